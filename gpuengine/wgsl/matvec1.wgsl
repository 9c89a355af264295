// matvec1: the products of a pass of one token (a step of one sequence)
// whose dispatch has quantized jobs; compiled after linear.wgsl. Where
// matvec sums up to TV tokens a workgroup, this kernel sums one, so that a
// thread holds one sum a row, and each quantized kind's loop loads its next
// column step while it sums the current one. Each thread sums four rows (a
// quad) over its lane's column steps; the lanes of a quad add their sums in
// workgroup memory, in a tree.
//
// NF4 and SF4 take two words of codes a row a step (16 codes, a quarter of
// a block, so one absmax): a lane's inputs are 64 bytes from its
// neighbour's, and a warp's loads of them touch half the cache lines they
// would with a vec4<u32> of codes a lane (128 bytes). On an H200 (7B decode,
// tokens/s): four words loaded then summed, as matvec does, 168–185; a
// vec4<u32> a step 159; two words 195–197; two words with the next three
// steps in flight 193–195; a vec4<u32> with the inputs copied into
// workgroup memory, swizzled so that no two lanes of a warp read one bank,
// 5–7% slower than two words. Int8 went from 195 (matvec's loop, two steps
// loaded then summed) to 212–218; with the next two steps in flight, 195,
// and with its inputs in workgroup memory, 13% slower. Float16 jobs alone
// keep matvec: through this kernel 7B decode went from 170 to 143–156.

const Q1_QUADS: u32 = MV_ROWS / 4u;

var<workgroup> q1sum: array<array<vec4<f32>, LANES>, Q1_QUADS>;

// f16_quad is matvec's float16 loop for one token (float16 jobs share a
// dispatch with quantized ones: the first LoRA stages).
fn f16_quad(j: Job, r: u32, lane: u32, xi: u32) -> vec4<f32> {
    let n = j.cols / 8u;
    let base = j.w / 4u + r * n;
    var acc = vec4<f32>(0.0);
    var i = lane;
    for (; i + LANES < n; i += 2u * LANES) {
        let x = xi + 2u * i;
        let xu = x + 2u * LANES;
        acc += f16rows(wt[base + i], wt[base + n + i], wt[base + 2u * n + i], wt[base + 3u * n + i], act[x], act[x + 1u]) +
               f16rows(wt[base + i + LANES], wt[base + n + i + LANES], wt[base + 2u * n + i + LANES],
                       wt[base + 3u * n + i + LANES], act[xu], act[xu + 1u]);
    }
    if i < n {
        let x = xi + 2u * i;
        acc += f16rows(wt[base + i], wt[base + n + i], wt[base + 2u * n + i], wt[base + 3u * n + i], act[x], act[x + 1u]);
    }
    return acc;
}

fn i8_quad(j: Job, r: u32, lane: u32, xi: u32) -> vec4<f32> {
    let n = j.cols / 16u;
    let base = j.w / 4u + r * n;
    var acc = vec4<f32>(0.0);
    var i = lane;
    if i >= n {
        return acc;
    }
    // Past the row's end the next load fetches the last step again, so
    // that it needs no branch.
    var a = i8_load(j, base, n, r, i);
    loop {
        let next = i + LANES;
        let b = i8_load(j, base, n, r, min(next, n - 1u));
        acc += i8_rows(a, xi + 4u * i);
        if next >= n {
            break;
        }
        a = b;
        i = next;
    }
    return acc;
}

// Two words of codes of each of four rows (16 codes a row) and their
// blocks' absmax.
struct Codes2 {
    a: vec4<u32>,
    b: vec4<u32>,
    sc: vec4<f32>,
}

// nf4_load2 fetches step i (words 2i and 2i + 1) of rows r…r+3, n words a
// row. A step's 16 codes start at a multiple of 16, so they share a block
// of 64.
fn nf4_load2(j: Job, base: u32, n: u32, r: u32, i: u32) -> Codes2 {
    var c: Codes2;
    let w = base + 2u * i;
    c.a = vec4<u32>(word(w), word(w + n), word(w + 2u * n), word(w + 3u * n));
    c.b = vec4<u32>(word(w + 1u), word(w + n + 1u), word(w + 2u * n + 1u), word(w + 3u * n + 1u));
    let e = r * j.cols + 16u * i;
    c.sc = vec4<f32>(absmax(j, e / 64u), absmax(j, (e + j.cols) / 64u), absmax(j, (e + 2u * j.cols) / 64u),
                     absmax(j, (e + 3u * j.cols) / 64u));
    return c;
}

// nf4_rows2 is the products of a step of four rows with its 16 inputs from
// act[xi].
fn nf4_rows2(c: Codes2, xi: u32) -> vec4<f32> {
    let x0 = act[xi];
    let x1 = act[xi + 1u];
    let x2 = act[xi + 2u];
    let x3 = act[xi + 3u];
    return c.sc * (nf4_col(c.a.x, c.a.y, c.a.z, c.a.w, x0, x1) + nf4_col(c.b.x, c.b.y, c.b.z, c.b.w, x2, x3));
}

fn nf4_quad(j: Job, r: u32, lane: u32, xi: u32) -> vec4<f32> {
    let n = j.cols / 8u; // words a row; cols is a multiple of 32, so n of 4
    let steps = n / 2u;
    let base = j.w + r * n;
    var acc = vec4<f32>(0.0);
    var i = lane;
    if i >= steps {
        return acc;
    }
    var a = nf4_load2(j, base, n, r, i);
    loop {
        let next = i + LANES;
        let b = nf4_load2(j, base, n, r, min(next, steps - 1u));
        acc += nf4_rows2(a, xi + 4u * i);
        if next >= steps {
            break;
        }
        a = b;
        i = next;
    }
    return acc;
}

@compute @workgroup_size(Q1_QUADS * LANES)
fn matvec1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let jr = find_job(wid.x, MV_ROWS);
    if jr.x >= lin.n {
        return;
    }
    let j = lin.jobs[jr.x];
    load_book(j.kind, lid);
    let t = wid.y;
    if t >= job_count(j) {
        return;
    }
    let quad = lid / LANES;
    let lane = lid % LANES;
    let r = jr.y + quad * 4u;
    var acc = vec4<f32>(0.0);
    if r < j.rows {
        let xi = (j.x + t * j.xs) / 4u;
        switch kind_of(j) {
            case 0u: {
                acc = f16_quad(j, r, lane, xi);
            }
            case 1u: {
                acc = i8_quad(j, r, lane, xi);
            }
            default: {
                acc = nf4_quad(j, r, lane, xi);
            }
        }
    }
    q1sum[quad][lane] = acc;
    workgroupBarrier();
    for (var s = LANES / 2u; s > 0u; s >>= 1u) {
        if lane < s {
            q1sum[quad][lane] += q1sum[quad][lane + s];
        }
        workgroupBarrier();
    }
    if lane == 0u && r < j.rows {
        finish(j, q1sum[quad][0], t, r);
    }
}
