// ---- matmat: the jobs of linear.wgsl over tiles of BM = 8·TM rows ×
// BN = 8·TN tokens, TM × TN threads (TM and TN from the host: 16 × 16, or
// 8 × 8 for a dispatch that would otherwise have too few workgroups to fill
// the GPU). Each thread sums 8 rows × 8 tokens: rows of
// quads ty and ty + TM, tokens of quads tx and tx + TN.
//
// The tiles go through workgroup memory BK = 8 columns at a time, stored
// transposed ([k][quad of rows or tokens], so that the products read vec4
// of four rows or tokens at one column) in two buffers: while the threads
// multiply one slice, the next is on its way from memory into registers
// (still packed: float16 pairs, codes), and after the products it is
// decoded into the other buffer. One barrier per slice. (Slices of 16
// columns, with half the barriers and twice the workgroup memory, were
// slower on an H200 however their columns were looped or unrolled.)
//
// Loading (Fetcher below): in the 64 × 64 tile every thread fetches a row
// of the weight slice and a token of the input slice, 8 columns each; in
// the 128 × 128 tile each thread pair fetches a row and a token of two
// slices at once, one each, so that a warp's load instruction touches 16
// rows (or tokens) rather than 32: a load is served a line of memory at a
// time, and the lines, not the bytes, were what the fetches cost (an H200,
// 7B prompt 2,094 → 2,130 tokens/s, 0.1B 87,630–87,850 → 95,250–97,230).
// The scalar stores of a warp fill 32 banks.
//
// Constant indices only into private arrays: one indexed by a variable
// lives in local memory.

const BM: u32 = 8u * TM;
const BN: u32 = 8u * TN;
const NT: u32 = TM * TN;
const BK: u32 = 8u;
const QM: u32 = 2u * TM; // quads of rows in a tile
const QN: u32 = 2u * TN;
const XS: u32 = NT - BN;

// [buffer][k][row quad] and [buffer][k][token quad]. Naga clamps each
// index of an access into workgroup memory to its array, so one flat index
// costs a clamp and an address for each load; these three fold into
// constants and values fixed for the slice.
var<workgroup> ws: array<array<array<vec4<f32>, QM>, BK>, 2>;
var<workgroup> xs: array<array<array<vec4<f32>, QN>, BK>, 2>;

// A fetched slice: the weights still packed (kind 0: 8 float16; 1: two
// words of codes, the block's (min, max); 2, 3: a word of nibbles, the
// block's absmax in the low half), the inputs as floats.
struct Slice {
    w: vec4<u32>,
    x0: vec4<f32>,
    x1: vec4<f32>,
}

fn fetch(j: Job, f: Fetcher, row: u32, tok: u32, count: u32, k0: u32) -> Slice {
    var s: Slice;
    if f.w && row < j.rows {
        let e = row * j.cols + k0; // element index in the matrix, a multiple of 8
        switch kind_of(j) {
            case 0u: {
                s.w = wt[(j.w + e / 2u) / 4u];
            }
            case 1u: {
                let i = j.w + e / 4u; // even: both words in one vec4
                let m = wt[i / 4u];
                let q = select(m.xy, m.zw, (i & 2u) != 0u);
                s.w = vec4<u32>(q, word(j.p + e / 128u), 0u);
            }
            default: {
                let b = e / 64u;
                s.w = vec4<u32>(word(j.w + e / 8u), word(j.p + b / 2u) >> (16u * (b & 1u)), 0u, 0u);
            }
        }
    }
    if f.x && tok < count {
        let xi = (j.x + tok * j.xs + k0) / 4u;
        s.x0 = act[xi];
        s.x1 = act[xi + 1u];
    }
    return s;
}

// Fetcher is what thread lid fetches: with G = 1, row r of the weights
// (lid < BM) and token t of the inputs (lid ≥ XS) of every slice; with
// G = 2 (the 128 × 128 tile, twice the threads of a tile's rows), row r and
// token t of every other slice, those ≡ h (mod 2), two slices fetched at
// once a group: a thread pair then reads 32 adjacent bytes of a row of
// float16 weights and 64 of a token, a warp 16 rows and 16 tokens, where
// one slice's fetch by 32 threads touches 32 of each.
struct Fetcher {
    w: bool,
    x: bool,
    r: u32,
    t: u32,
    h: u32,
}

fn fetcher(lid: u32) -> Fetcher {
    if G == 2u {
        return Fetcher(true, true, lid / 2u, lid / 2u, lid % 2u);
    }
    return Fetcher(lid < BM, lid >= XS, lid, lid - XS, 0u);
}

// put decodes slice s into buffer b.
fn put(kind: u32, f: Fetcher, s: Slice, b: u32) {
    if f.w {
        var w0: vec4<f32>;
        var w1: vec4<f32>;
        switch kind {
            case 0u: {
                w0 = f16x8(s.w, 0u);
                w1 = f16x8(s.w, 1u);
            }
            case 1u: {
                let mm = unpack2x16float(s.w.z);
                let sc = vec4<f32>(mm.y - mm.x);
                w0 = fma(unpack4x8unorm(s.w.x), sc, vec4<f32>(mm.x));
                w1 = fma(unpack4x8unorm(s.w.y), sc, vec4<f32>(mm.x));
            }
            default: {
                let am = unpack2x16float(s.w.y).x;
                w0 = nf4x4(s.w.x, 0u) * am;
                w1 = nf4x4(s.w.x, 16u) * am;
            }
        }
        let q = f.r / 4u;
        let c = f.r % 4u;
        ws[b][0][q][c] = w0.x;
        ws[b][1][q][c] = w0.y;
        ws[b][2][q][c] = w0.z;
        ws[b][3][q][c] = w0.w;
        ws[b][4][q][c] = w1.x;
        ws[b][5][q][c] = w1.y;
        ws[b][6][q][c] = w1.z;
        ws[b][7][q][c] = w1.w;
    }
    if f.x {
        let q = f.t / 4u;
        let c = f.t % 4u;
        xs[b][0][q][c] = s.x0.x;
        xs[b][1][q][c] = s.x0.y;
        xs[b][2][q][c] = s.x0.z;
        xs[b][3][q][c] = s.x0.w;
        xs[b][4][q][c] = s.x1.x;
        xs[b][5][q][c] = s.x1.y;
        xs[b][6][q][c] = s.x1.z;
        xs[b][7][q][c] = s.x1.w;
    }
}

// A dispatch may split its columns into parts (the grid has that many times
// the token tiles): workgroup row y sums part y / tiles of the slices into
// partial sums at lin.scratch ([part][token][row], the rows of the jobs one
// after another), which matsum adds up and finishes.
@compute @workgroup_size(NT)
fn matmat(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let jr = find_job(wid.x, BM);
    if jr.x >= lin.n {
        return;
    }
    let j = lin.jobs[jr.x];
    let count = job_count(j);
    let sp = split_of(wid.y, nwg.y, count, BN);
    let parts = sp.x;
    let kp = sp.y;
    let t0 = sp.z;
    if t0 >= count || kp >= parts {
        return;
    }
    let n = j.cols / BK / parts;
    var o = Out(false, 0u, 0u);
    if parts > 1u {
        o = Out(true, lin.scratch + kp * count * lin.rows + j.off, lin.rows);
    }
    tile_sums(j, jr.y, t0, count, kp * n, n, o, lid);
}

// Where a tile's sums go: finished into the job's output, or as partial sums
// of row r, token t at base + t·stride + r.
struct Out {
    partial: bool,
    base: u32,
    stride: u32,
}

// tile_sums sums the tile of rows r0… and tokens t0… of job j over n slices
// from slice first, and stores the sums as o says.
fn tile_sums(j: Job, r0: u32, t0: u32, count: u32, first: u32, n: u32, o: Out, lid: u32) {
    load_book(j.kind, lid);
    let kind = kind_of(j);
    // A warp computes 8 row quads × 4 token quads: its reads of a column
    // are 8 and 4 consecutive vec4 (broadcast to the others). A read of a
    // vec4 returns four registers a lane, at 32 a clock, unless lanes n
    // and n^1 or lanes n and n^2 read the same address: then it takes half
    // the clocks. So with PAIRS, lane bit 0 picks among token quads and
    // bit 1 among row quads, each read meets one of the two rules (lanes
    // n and n^1 share a row quad, n and n^2 a token quad); without, lanes
    // n and n^1 differ in their token quad. (An H200: 7B prompt 2,045 →
    // 2,094 tokens/s, 1.5B 9,743–9,760 → 9,927–9,943.)
    let lane = lid % 32u;
    let warp = lid / 32u;
    var lx = lane % 4u;
    var ly = lane / 4u;
    if PAIRS == 1u {
        lx = (lane & 1u) | ((lane >> 3u) & 2u);
        ly = (lane >> 1u) & 7u;
    }
    let tx = (warp % (TN / 4u)) * 4u + lx;
    let ty = (warp / (TN / 4u)) * 8u + ly;
    let f = fetcher(lid);
    let row = r0 + f.r;
    let tok = t0 + f.t;
    var acc: array<vec4<f32>, 16>; // [token][row quad]
    var s: Slice;
    if f.h < n {
        s = fetch(j, f, row, tok, count, (first + f.h) * BK);
    }
    if f.h == 0u {
        put(kind, f, s, 0u);
    }
    workgroupBarrier();
    for (var i = 0u; i < n; i++) {
        let b = i & 1u;
        let more = i + 1u < n;
        // The last slice of a group fetches the next group.
        let next = i + 1u + f.h;
        if (i + 1u) % G == 0u && next < n {
            s = fetch(j, f, row, tok, count, (first + next) * BK);
        }
        for (var k = 0u; k < BK; k++) {
            let a0 = ws[b][k][ty];
            let a1 = ws[b][k][ty + TM];
            let b0 = xs[b][k][tx];
            let b1 = xs[b][k][tx + TN];
            acc[0] = fma(a0, vec4<f32>(b0.x), acc[0]);
            acc[1] = fma(a1, vec4<f32>(b0.x), acc[1]);
            acc[2] = fma(a0, vec4<f32>(b0.y), acc[2]);
            acc[3] = fma(a1, vec4<f32>(b0.y), acc[3]);
            acc[4] = fma(a0, vec4<f32>(b0.z), acc[4]);
            acc[5] = fma(a1, vec4<f32>(b0.z), acc[5]);
            acc[6] = fma(a0, vec4<f32>(b0.w), acc[6]);
            acc[7] = fma(a1, vec4<f32>(b0.w), acc[7]);
            acc[8] = fma(a0, vec4<f32>(b1.x), acc[8]);
            acc[9] = fma(a1, vec4<f32>(b1.x), acc[9]);
            acc[10] = fma(a0, vec4<f32>(b1.y), acc[10]);
            acc[11] = fma(a1, vec4<f32>(b1.y), acc[11]);
            acc[12] = fma(a0, vec4<f32>(b1.z), acc[12]);
            acc[13] = fma(a1, vec4<f32>(b1.z), acc[13]);
            acc[14] = fma(a0, vec4<f32>(b1.w), acc[14]);
            acc[15] = fma(a1, vec4<f32>(b1.w), acc[15]);
        }
        if more && (i + 1u) % G == f.h {
            put(kind, f, s, 1u - b);
        }
        workgroupBarrier();
    }
    let r = r0 + 4u * ty;
    let r2 = r + 4u * TM;
    let t = t0 + 4u * tx;
    let t2 = t + 4u * TN;
    if o.partial {
        partial2(j, o, acc[0], acc[1], t, r, r2, count);
        partial2(j, o, acc[2], acc[3], t + 1u, r, r2, count);
        partial2(j, o, acc[4], acc[5], t + 2u, r, r2, count);
        partial2(j, o, acc[6], acc[7], t + 3u, r, r2, count);
        partial2(j, o, acc[8], acc[9], t2, r, r2, count);
        partial2(j, o, acc[10], acc[11], t2 + 1u, r, r2, count);
        partial2(j, o, acc[12], acc[13], t2 + 2u, r, r2, count);
        partial2(j, o, acc[14], acc[15], t2 + 3u, r, r2, count);
        return;
    }
    store2(j, acc[0], acc[1], t, r, r2, count);
    store2(j, acc[2], acc[3], t + 1u, r, r2, count);
    store2(j, acc[4], acc[5], t + 2u, r, r2, count);
    store2(j, acc[6], acc[7], t + 3u, r, r2, count);
    store2(j, acc[8], acc[9], t2, r, r2, count);
    store2(j, acc[10], acc[11], t2 + 1u, r, r2, count);
    store2(j, acc[12], acc[13], t2 + 2u, r, r2, count);
    store2(j, acc[14], acc[15], t2 + 3u, r, r2, count);
}

// store2 finishes rows r…r+3 and r2…r2+3 of token t, as far as they exist.
fn store2(j: Job, a: vec4<f32>, b: vec4<f32>, t: u32, r: u32, r2: u32, count: u32) {
    if t < count {
        if r < j.rows {
            finish(j, a, t, r);
        }
        if r2 < j.rows {
            finish(j, b, t, r2);
        }
    }
}

// partial2 stores the sums of rows r…r+3 and r2…r2+3 of token t, as far as
// they exist, as partial sums where o says.
fn partial2(j: Job, o: Out, a: vec4<f32>, b: vec4<f32>, t: u32, r: u32, r2: u32, count: u32) {
    if t < count {
        if r < j.rows {
            act[(o.base + t * o.stride + r) / 4u] = a;
        }
        if r2 < j.rows {
            act[(o.base + t * o.stride + r2) / 4u] = b;
        }
    }
}

// matsum adds up the partial sums of a split dispatch and finishes them:
// thread g of the grid's first row of workgroups the rows 4(g mod R/4)… of
// the jobs' R rows (in the job they fall in) of token g / (R/4); the grid's
// height is the number of parts.
@compute @workgroup_size(256)
fn matsum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
    let count = job_count(lin.jobs[0]);
    let q = lin.rows / 4u;
    let g = wid.x * 256u + lid;
    if wid.y > 0u || g >= count * q {
        return;
    }
    let t = g / q;
    let rr = (g % q) * 4u;
    var ji = 0u;
    for (var i = 1u; i < lin.n; i++) {
        if rr >= lin.jobs[i].off {
            ji = i;
        }
    }
    let j = lin.jobs[ji];
    var v = vec4<f32>(0.0);
    for (var p = 0u; p < nwg.y; p++) {
        v += act[(lin.scratch + (p * count + t) * lin.rows + rr) / 4u];
    }
    finish(j, v, t, rr - j.off);
}
