// Matrix products y[t] = act(W · x[t]) for up to MAXJOBS matrices at once
// (one dispatch for the products that share an input stage), each with its
// own input, output and activation. W is [rows][cols] row-major in a
// weight arena in one of three storage kinds:
//   0 float16, two per u32;
//   1 Int8 (web-rwkv): a byte per value, then per block of 128 consecutive
//     values a u32 of two float16 (min, max); w = min + (max − min)·q/255;
//   2 NF4 (web-rwkv): a nibble per value (value 2i in the low nibble of
//     byte i), then per block of 64 values a float16 absmax;
//     w = NF4[code]·absmax;
//   3 SF4 (web-rwkv): NF4 with the code book SF4 (Student-t quantiles).
// rows are a multiple of 4, cols of 32, offsets of activations of 4.
//
// Four kernels over the same jobs: matvec, a few tokens per workgroup, for
// steps (reads the weights once per 4 tokens; bound by memory bandwidth);
// matvec1 (matvec1.wgsl, compiled after this file), one token, for the
// quantized products of a step of one sequence; matmat (matmat.wgsl,
// likewise), tiles of rows × tokens through workgroup memory, for prompts
// and batches (bound by arithmetic); and matstream (matstream.wgsl, after
// matmat.wgsl), matmat's tiles with their slices shared out evenly among a
// fixed number of workgroups, for dispatches of too few tiles to fill the
// GPU.

struct Job {
    w: u32,     // arena word offset of the codes (or float16 pairs)
    p: u32,     // arena word offset of the block parameters
    kind: u32,
    rows: u32,
    cols: u32,
    x: u32,     // activation offset of token 0's input; xs between tokens
    xs: u32,
    y: u32,     // activation offset of token 0's output; ys between tokens
    ys: u32,
    act: u32,   // 0 none, 1 tanh, 2 sigmoid, 3 relu², 4 silu, 5 y += v, 6 y += aux·v
    aux: u32,   // activation offset of the gate for act 6; auxs between tokens
    auxs: u32,
    count: u32, // 0: the pass's tokens, 1: its output rows
    dst: u32,   // 0: y is in the activations, 1: in the logits
    off: u32,   // the rows of the jobs before it in the dispatch
    _2: u32,
}

struct Jobs {
    n: u32,
    scratch: u32, // activation offset of the partial sums of a split dispatch (matmat.wgsl)
    rows: u32,    // the rows of all its jobs
    streams: u32, // workgroups of a stream dispatch (matstream.wgsl)
    jobs: array<Job, MAXJOBS>,
}

@group(0) @binding(0) var<uniform> lin: Jobs;
@group(0) @binding(2) var<storage, read> wt: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> act: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> logits: array<vec4<f32>>;

// NF4 and SF4, the code books of kinds 2 and 3, come from the host.

var<workgroup> nf4: array<f32, 16>;

// load_book puts the code book of a 4-bit kind in workgroup memory.
fn load_book(kind: u32, lid: u32) {
    if lid < 16u {
        var n = NF4; // a constant array may only be indexed by constants
        var s = SF4;
        nf4[lid] = select(n[lid], s[lid], kind == 3u);
    }
    workgroupBarrier();
}

fn word(i: u32) -> u32 { return wt[i >> 2u][i & 3u]; }

// find_job maps a workgroup's row tile to (job, first row); tiles of rpt
// rows are numbered job after job.
fn find_job(tile: u32, rpt: u32) -> vec2<u32> {
    var base = 0u;
    for (var j = 0u; j < lin.n; j++) {
        let n = (lin.jobs[j].rows + rpt - 1u) / rpt;
        if tile < base + n {
            return vec2<u32>(j, (tile - base) * rpt);
        }
        base += n;
    }
    return vec2<u32>(MAXJOBS, 0u);
}

// split_of is (parts, part, first token) of workgroup row y of a grid of
// height rows over count tokens, per tokens a workgroup: the rows are the
// token tiles of part 0, then those of part 1, ….
fn split_of(y: u32, height: u32, count: u32, per: u32) -> vec3<u32> {
    let tiles = (count + per - 1u) / per;
    return vec3<u32>(height / tiles, y / tiles, (y % tiles) * per);
}

// kind_of is job j's storage kind: KIND (from the host) where the kernel
// was compiled for jobs of that kind alone, so that it has the registers
// its own path needs, not the most any kind's does; else the job's own.
fn kind_of(j: Job) -> u32 { return select(j.kind, KIND, KIND < 4u); }

fn job_count(j: Job) -> u32 {
    return select(n_tokens(), n_rows(), j.count == 1u);
}

fn sigmoid4(v: vec4<f32>) -> vec4<f32> { return 1.0 / (1.0 + exp(-v)); }

// finish stores v, the products of rows r…r+3 for token t, through the
// job's activation.
fn finish(j: Job, v: vec4<f32>, t: u32, r: u32) {
    let yi = (j.y + t * j.ys + r) / 4u;
    var o = v;
    switch j.act {
        case 1u: {
            o = vec4<f32>(tanh_(v.x), tanh_(v.y), tanh_(v.z), tanh_(v.w));
        }
        case 2u: {
            o = sigmoid4(v);
        }
        case 3u: {
            let z = max(v, vec4<f32>(0.0));
            o = z * z;
        }
        case 4u: {
            o = v * sigmoid4(v);
        }
        case 5u: {
            o = act[yi] + v;
        }
        case 6u: {
            o = act[yi] + act[(j.aux + t * j.auxs + r) / 4u] * v;
        }
        default: {}
    }
    if j.dst == 1u {
        logits[yi] = o;
    } else {
        act[yi] = o;
    }
}

fn f16x8(w: vec4<u32>, i: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w[2u * i]), unpack2x16float(w[2u * i + 1u]));
}

// f16rows is the products of four rows' 8 float16 values (m0…m3) with the
// 8 inputs a, b.
fn f16rows(m0: vec4<u32>, m1: vec4<u32>, m2: vec4<u32>, m3: vec4<u32>, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(dot(f16x8(m0, 0u), a) + dot(f16x8(m0, 1u), b), dot(f16x8(m1, 0u), a) + dot(f16x8(m1, 1u), b),
                     dot(f16x8(m2, 0u), a) + dot(f16x8(m2, 1u), b), dot(f16x8(m3, 0u), a) + dot(f16x8(m3, 1u), b));
}

fn nf4x4(q: u32, shift: u32) -> vec4<f32> {
    return vec4<f32>(nf4[(q >> shift) & 15u], nf4[(q >> (shift + 4u)) & 15u],
                     nf4[(q >> (shift + 8u)) & 15u], nf4[(q >> (shift + 12u)) & 15u]);
}

fn absmax(j: Job, b: u32) -> f32 { return unpack2x16float(word(j.p + b / 2u))[b & 1u]; }

// nf4_dot is the product of the 8 values of a word of 4-bit codes with a, b.
fn nf4_dot(q: u32, a: vec4<f32>, b: vec4<f32>) -> f32 { return dot(nf4x4(q, 0u), a) + dot(nf4x4(q, 16u), b); }

// nf4_col is the products of one word of codes of each of four rows with
// the 8 inputs a, b (plain values, not arrays: a private array indexed by a
// loop variable may live in local memory).
fn nf4_col(q0: u32, q1: u32, q2: u32, q3: u32, a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(nf4_dot(q0, a, b), nf4_dot(q1, a, b), nf4_dot(q2, a, b), nf4_dot(q3, a, b));
}

// A column step of four rows' Int8 codes, fetched before it is used so that
// the next step's loads are in flight meanwhile.
struct Codes {
    q0: vec4<u32>,
    q1: vec4<u32>,
    q2: vec4<u32>,
    q3: vec4<u32>,
    lo: vec4<f32>, // the blocks' min
    sc: vec4<f32>, // (max − min)/255
}

// i8_load fetches step i (16 codes a row) of rows r…r+3, n steps a row.
fn i8_load(j: Job, base: u32, n: u32, r: u32, i: u32) -> Codes {
    var c: Codes;
    c.q0 = wt[base + i];
    c.q1 = wt[base + n + i];
    c.q2 = wt[base + 2u * n + i];
    c.q3 = wt[base + 3u * n + i];
    let e = r * j.cols + i * 16u; // row r's element; the next rows' are cols apart
    let m0 = unpack2x16float(word(j.p + e / 128u));
    let m1 = unpack2x16float(word(j.p + (e + j.cols) / 128u));
    let m2 = unpack2x16float(word(j.p + (e + 2u * j.cols) / 128u));
    let m3 = unpack2x16float(word(j.p + (e + 3u * j.cols) / 128u));
    c.lo = vec4<f32>(m0.x, m1.x, m2.x, m3.x);
    c.sc = (vec4<f32>(m0.y, m1.y, m2.y, m3.y) - c.lo) * (1.0 / 255.0);
    return c;
}

// u8x4 is the four bytes of w as floats. 2²³ + b has b in the low bits of
// its mantissa, so an OR and an exact subtraction convert a byte, where
// unpack4x8unorm takes four conversion instructions: NVIDIA GPUs run 16 of
// those a clock per multiprocessor against 128 multiply-adds (CUDA C++
// Programming Guide, arithmetic instruction throughput, compute capability
// 9.0).
fn u8x4(w: u32) -> vec4<f32> {
    let b = vec4<u32>(w, w >> 8u, w >> 16u, w >> 24u) & vec4<u32>(0xFFu);
    return bitcast<vec4<f32>>(b | vec4<u32>(0x4B000000u)) - vec4<f32>(8388608.0);
}

fn u8dot(q: vec4<u32>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>) -> f32 {
    return dot(u8x4(q.x), x0) + dot(u8x4(q.y), x1) + dot(u8x4(q.z), x2) + dot(u8x4(q.w), x3);
}

// i8_rows is the products of a step of four rows with the 16 inputs from
// act[xi]: min·Σx + (max − min)/255·Σq·x.
fn i8_rows(c: Codes, xi: u32) -> vec4<f32> {
    let x0 = act[xi];
    let x1 = act[xi + 1u];
    let x2 = act[xi + 2u];
    let x3 = act[xi + 3u];
    let sx = dot(x0 + x1 + x2 + x3, vec4<f32>(1.0));
    let d = vec4<f32>(u8dot(c.q0, x0, x1, x2, x3), u8dot(c.q1, x0, x1, x2, x3), u8dot(c.q2, x0, x1, x2, x3),
                      u8dot(c.q3, x0, x1, x2, x3));
    return c.lo * sx + c.sc * d;
}

// A word of codes of each of four rows (8 NF4 codes a row) and their
// blocks' absmax. NF4 gives consecutive lanes consecutive words of a row,
// so that a warp's loads of the inputs are consecutive too: with a
// vec4<u32> of codes a lane, a lane's 32 inputs were 128 bytes from its
// neighbour's, and every load of the warp touched 32 cache lines for 512
// bytes. (Int8 lost with a word a lane: four times the loads of codes
// and of block parameters.)
struct Words {
    q: vec4<u32>,
    sc: vec4<f32>,
}

// nf4_load fetches word w (codes 8w…8w+7) of rows r…r+3, n words a row.
fn nf4_load(j: Job, base: u32, n: u32, r: u32, w: u32) -> Words {
    var c: Words;
    c.q = vec4<u32>(word(base + w), word(base + n + w), word(base + 2u * n + w), word(base + 3u * n + w));
    let e = r * j.cols + 8u * w;
    c.sc = vec4<f32>(absmax(j, e / 64u), absmax(j, (e + j.cols) / 64u), absmax(j, (e + 2u * j.cols) / 64u),
                     absmax(j, (e + 3u * j.cols) / 64u));
    return c;
}

// nf4_rows is the products of a word of four rows with its 8 inputs from
// act[xi].
fn nf4_rows(c: Words, xi: u32) -> vec4<f32> {
    return c.sc * nf4_col(c.q.x, c.q.y, c.q.z, c.q.w, act[xi], act[xi + 1u]);
}

// ---- matvec: MV_ROWS/4 quads of 4 rows, LANES threads per quad (from the
// host: 32, fewer for narrow models), TV tokens ----

const MV_QUADS: u32 = MV_ROWS / 4u;
const TV: u32 = 4u;
const MV_PARTS: u32 = MV_QUADS * TV;

var<workgroup> part: array<array<vec4<f32>, LANES>, MV_PARTS>; // [quad·TV + token][lane]

// matvec: thread (quad, lane) sums rows r…r+3 of up to TV tokens over the
// column steps lane, lane + LANES, …; the lanes' sums meet in workgroup
// memory.
@compute @workgroup_size(MV_QUADS * LANES)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let jr = find_job(wid.x, MV_ROWS);
    if jr.x >= lin.n {
        return;
    }
    let j = lin.jobs[jr.x];
    load_book(j.kind, lid);
    let count = job_count(j);
    let t0 = wid.y * TV;
    if t0 >= count {
        return;
    }
    let nt = min(TV, count - t0);
    let quad = lid / LANES;
    let lane = lid % LANES;
    let r = jr.y + quad * 4u;
    var acc: array<vec4<f32>, TV>;
    if r < j.rows {
        switch kind_of(j) {
            case 0u: {
                // 8 values per vec4<u32>.
                let n = j.cols / 8u;
                let base = j.w / 4u + r * n;
                // Two column steps per iteration: twice the loads in flight
                // before the first is used.
                var i = lane;
                for (; i + LANES < n; i += 2u * LANES) {
                    let m0 = wt[base + i];
                    let m1 = wt[base + n + i];
                    let m2 = wt[base + 2u * n + i];
                    let m3 = wt[base + 3u * n + i];
                    let u0 = wt[base + i + LANES];
                    let u1 = wt[base + n + i + LANES];
                    let u2 = wt[base + 2u * n + i + LANES];
                    let u3 = wt[base + 3u * n + i + LANES];
                    for (var k = 0u; k < TV; k++) {
                        if k >= nt {
                            break;
                        }
                        let xi = (j.x + (t0 + k) * j.xs) / 4u + 2u * i;
                        let xu = xi + 2u * LANES;
                        acc[k] += f16rows(m0, m1, m2, m3, act[xi], act[xi + 1u]) +
                                  f16rows(u0, u1, u2, u3, act[xu], act[xu + 1u]);
                    }
                }
                if i < n {
                    let m0 = wt[base + i];
                    let m1 = wt[base + n + i];
                    let m2 = wt[base + 2u * n + i];
                    let m3 = wt[base + 3u * n + i];
                    for (var k = 0u; k < TV; k++) {
                        if k >= nt {
                            break;
                        }
                        let xi = (j.x + (t0 + k) * j.xs) / 4u + 2u * i;
                        acc[k] += f16rows(m0, m1, m2, m3, act[xi], act[xi + 1u]);
                    }
                }
            }
            case 1u: {
                // 16 codes per vec4<u32>, within one block of 128; two
                // column steps per iteration, as for float16.
                let n = j.cols / 16u;
                let base = j.w / 4u + r * n;
                var i = lane;
                for (; i + LANES < n; i += 2u * LANES) {
                    let a = i8_load(j, base, n, r, i);
                    let b = i8_load(j, base, n, r, i + LANES);
                    for (var k = 0u; k < TV; k++) {
                        if k >= nt {
                            break;
                        }
                        let xi = (j.x + (t0 + k) * j.xs) / 4u + 4u * i;
                        acc[k] += i8_rows(a, xi) + i8_rows(b, xi + 4u * LANES);
                    }
                }
                if i < n {
                    let a = i8_load(j, base, n, r, i);
                    for (var k = 0u; k < TV; k++) {
                        if k >= nt {
                            break;
                        }
                        acc[k] += i8_rows(a, (j.x + (t0 + k) * j.xs) / 4u + 4u * i);
                    }
                }
            }
            default: {
                // Words of 8 codes, 4 words a row per iteration.
                let n = j.cols / 8u;
                let base = j.w + r * n;
                var i = lane;
                for (; i + 3u * LANES < n; i += 4u * LANES) {
                    let a = nf4_load(j, base, n, r, i);
                    let b = nf4_load(j, base, n, r, i + LANES);
                    let c = nf4_load(j, base, n, r, i + 2u * LANES);
                    let d = nf4_load(j, base, n, r, i + 3u * LANES);
                    for (var k = 0u; k < TV; k++) {
                        if k >= nt {
                            break;
                        }
                        let xi = (j.x + (t0 + k) * j.xs) / 4u + 2u * i;
                        acc[k] += nf4_rows(a, xi) + nf4_rows(b, xi + 2u * LANES) +
                                  nf4_rows(c, xi + 4u * LANES) + nf4_rows(d, xi + 6u * LANES);
                    }
                }
                for (; i < n; i += LANES) {
                    let a = nf4_load(j, base, n, r, i);
                    for (var k = 0u; k < TV; k++) {
                        if k >= nt {
                            break;
                        }
                        acc[k] += nf4_rows(a, (j.x + (t0 + k) * j.xs) / 4u + 2u * i);
                    }
                }
            }
        }
    }
    for (var k = 0u; k < TV; k++) {
        part[quad * TV + k][lane] = acc[k];
    }
    workgroupBarrier();
    if lane < nt && r < j.rows {
        var s = vec4<f32>(0.0);
        for (var l = 0u; l < LANES; l++) {
            s += part[quad * TV + lane][l];
        }
        finish(j, s, t0 + lane, r);
    }
}
