// RWKV-7's recurrence over long segments (see prep7.wgsl), one workgroup
// per (segment, head), thread i row i of the head's state S (N×N, [value i]
// [key j], in registers as N/4 vec4; N a multiple of 16 up to 64). The
// tokens' r, w, k, a, b, v come through workgroup memory BT tokens at a
// time, so a block costs two barriers rather than some per token, and the
// next block is fetched into registers while this one is computed:
//   S[i][j] ← S[i][j]·w_j + (Σ_l S[i][l]·a_l)·b_j + v_i·k_j;  y_i = Σ_j S[i][j]·r_j
// y is left un-normalised for post7.wgsl.

struct Params {
    r: u32,  // activation offsets, [T][C] each
    w: u32,
    k: u32,
    v: u32,
    a: u32,
    b: u32,
    y: u32,
    stride: u32, // floats per state slot
    mem: u32,    // offset of S within a slot
    slot0: u32,  // the first state slot of the bound buffer, which holds
    nslots: u32, // nslots: this dispatch serves the segments of those only
    _0: u32,
}

const BT: u32 = 8u;
const BLK: u32 = 40u; // 5·BT

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

// Token u of a block: rows 5u…5u+4 quads of the channels of r, w, k, a, b;
// vs[u] the values (thread i reads v_i only).
var<workgroup> blk: array<array<vec4<f32>, N4>, BLK>;
var<workgroup> vs: array<array<f32, N>, BT>;

// fetch4 reads channel o of tokens t…t+3 of the tensor at off, zero past end.
fn fetch4(off: u32, t: u32, end: u32, o: u32) -> vec4<f32> {
    var v: vec4<f32>;
    if t < end { v.x = act[off + t * C + o]; }
    if t + 1u < end { v.y = act[off + (t + 1u) * C + o]; }
    if t + 2u < end { v.z = act[off + (t + 2u) * C + o]; }
    if t + 3u < end { v.w = act[off + (t + 3u) * C + o]; }
    return v;
}

// A block fetched into registers: per tensor (r, w, k, a, b, v) tokens
// 0…3 and 4…7 of the thread's channel.
struct Block {
    r0: vec4<f32>, r1: vec4<f32>,
    w0: vec4<f32>, w1: vec4<f32>,
    k0: vec4<f32>, k1: vec4<f32>,
    a0: vec4<f32>, a1: vec4<f32>,
    b0: vec4<f32>, b1: vec4<f32>,
    v0: vec4<f32>, v1: vec4<f32>,
}

fn fetch(t: u32, end: u32, o: u32) -> Block {
    var b: Block;
    b.r0 = fetch4(p.r, t, end, o);
    b.r1 = fetch4(p.r, t + 4u, end, o);
    b.w0 = fetch4(p.w, t, end, o);
    b.w1 = fetch4(p.w, t + 4u, end, o);
    b.k0 = fetch4(p.k, t, end, o);
    b.k1 = fetch4(p.k, t + 4u, end, o);
    b.a0 = fetch4(p.a, t, end, o);
    b.a1 = fetch4(p.a, t + 4u, end, o);
    b.b0 = fetch4(p.b, t, end, o);
    b.b1 = fetch4(p.b, t + 4u, end, o);
    b.v0 = fetch4(p.v, t, end, o);
    b.v1 = fetch4(p.v, t + 4u, end, o);
    return b;
}

// put4 stores tokens u…u+3 of tensor f (0 r, 1 w, 2 k, 3 a, 4 b) of
// channel i.
fn put4(f: u32, u: u32, i: u32, v: vec4<f32>) {
    blk[5u * u + f][i / 4u][i % 4u] = v.x;
    blk[5u * (u + 1u) + f][i / 4u][i % 4u] = v.y;
    blk[5u * (u + 2u) + f][i / 4u][i % 4u] = v.z;
    blk[5u * (u + 3u) + f][i / 4u][i % 4u] = v.w;
}

fn put(b: Block, i: u32) {
    put4(0u, 0u, i, b.r0);
    put4(0u, 4u, i, b.r1);
    put4(1u, 0u, i, b.w0);
    put4(1u, 4u, i, b.w1);
    put4(2u, 0u, i, b.k0);
    put4(2u, 4u, i, b.k1);
    put4(3u, 0u, i, b.a0);
    put4(3u, 4u, i, b.a1);
    put4(4u, 0u, i, b.b0);
    put4(4u, 4u, i, b.b1);
    vs[0][i] = b.v0.x;
    vs[1][i] = b.v0.y;
    vs[2][i] = b.v0.z;
    vs[3][i] = b.v0.w;
    vs[4][i] = b.v1.x;
    vs[5][i] = b.v1.y;
    vs[6][i] = b.v1.z;
    vs[7][i] = b.v1.w;
}

// Constant indices only into S (a private array indexed by a variable
// lives in local memory): the quads are written out, those past N4
// removed by the compiler (quad c of blk is read as c % N4: c where the
// code runs, and an index in bounds where it is removed).
@compute @workgroup_size(N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) i: u32) {
    let s = wid.x;
    let h = wid.y;
    let slot = seg_slot(s) - p.slot0;
    if s >= n_segments() || slot >= p.nslots {
        return;
    }
    let start = seg_start(s);
    let end = start + seg_len(s);
    let o = h * N + i;
    let hb = slot * p.stride + p.mem + h * N * N;
    var S = load_row(hb, i);
    var next = fetch(start, end, o);
    for (var t0 = start; t0 < end; t0 += BT) {
        let n = min(BT, end - t0);
        workgroupBarrier();
        put(next, i);
        workgroupBarrier();
        if t0 + BT < end {
            next = fetch(t0 + BT, end, o);
        }
        for (var u = 0u; u < n; u++) {
            var d0 = vec4<f32>(0.0);
            var d1 = vec4<f32>(0.0);
            var d2 = vec4<f32>(0.0);
            var d3 = vec4<f32>(0.0);
            d0 = fma(S[0], blk[5u * u + 3u][0], d0);
            d1 = fma(S[1], blk[5u * u + 3u][1], d1);
            d2 = fma(S[2], blk[5u * u + 3u][2], d2);
            d3 = fma(S[3], blk[5u * u + 3u][3], d3);
            if N4 > 4u {
                d0 = fma(S[4], blk[5u * u + 3u][4u % N4], d0);
                d1 = fma(S[5], blk[5u * u + 3u][5u % N4], d1);
                d2 = fma(S[6], blk[5u * u + 3u][6u % N4], d2);
                d3 = fma(S[7], blk[5u * u + 3u][7u % N4], d3);
            }
            if N4 > 8u {
                d0 = fma(S[8], blk[5u * u + 3u][8u % N4], d0);
                d1 = fma(S[9], blk[5u * u + 3u][9u % N4], d1);
                d2 = fma(S[10], blk[5u * u + 3u][10u % N4], d2);
                d3 = fma(S[11], blk[5u * u + 3u][11u % N4], d3);
            }
            if N4 > 12u {
                d0 = fma(S[12], blk[5u * u + 3u][12u % N4], d0);
                d1 = fma(S[13], blk[5u * u + 3u][13u % N4], d1);
                d2 = fma(S[14], blk[5u * u + 3u][14u % N4], d2);
                d3 = fma(S[15], blk[5u * u + 3u][15u % N4], d3);
            }
            let dd = (d0 + d1) + (d2 + d3);
            let sa = vec4<f32>(dd.x + dd.y + dd.z + dd.w);
            let v = vec4<f32>(vs[u][i]);
            var y0 = vec4<f32>(0.0);
            var y1 = vec4<f32>(0.0);
            var y2 = vec4<f32>(0.0);
            var y3 = vec4<f32>(0.0);
            S[0] = fma(S[0], blk[5u * u + 1u][0], fma(sa, blk[5u * u + 4u][0], v * blk[5u * u + 2u][0]));
            y0 = fma(S[0], blk[5u * u][0], y0);
            S[1] = fma(S[1], blk[5u * u + 1u][1], fma(sa, blk[5u * u + 4u][1], v * blk[5u * u + 2u][1]));
            y1 = fma(S[1], blk[5u * u][1], y1);
            S[2] = fma(S[2], blk[5u * u + 1u][2], fma(sa, blk[5u * u + 4u][2], v * blk[5u * u + 2u][2]));
            y2 = fma(S[2], blk[5u * u][2], y2);
            S[3] = fma(S[3], blk[5u * u + 1u][3], fma(sa, blk[5u * u + 4u][3], v * blk[5u * u + 2u][3]));
            y3 = fma(S[3], blk[5u * u][3], y3);
            if N4 > 4u {
                S[4] = fma(S[4], blk[5u * u + 1u][4u % N4], fma(sa, blk[5u * u + 4u][4u % N4], v * blk[5u * u + 2u][4u % N4]));
                y0 = fma(S[4], blk[5u * u][4u % N4], y0);
                S[5] = fma(S[5], blk[5u * u + 1u][5u % N4], fma(sa, blk[5u * u + 4u][5u % N4], v * blk[5u * u + 2u][5u % N4]));
                y1 = fma(S[5], blk[5u * u][5u % N4], y1);
                S[6] = fma(S[6], blk[5u * u + 1u][6u % N4], fma(sa, blk[5u * u + 4u][6u % N4], v * blk[5u * u + 2u][6u % N4]));
                y2 = fma(S[6], blk[5u * u][6u % N4], y2);
                S[7] = fma(S[7], blk[5u * u + 1u][7u % N4], fma(sa, blk[5u * u + 4u][7u % N4], v * blk[5u * u + 2u][7u % N4]));
                y3 = fma(S[7], blk[5u * u][7u % N4], y3);
            }
            if N4 > 8u {
                S[8] = fma(S[8], blk[5u * u + 1u][8u % N4], fma(sa, blk[5u * u + 4u][8u % N4], v * blk[5u * u + 2u][8u % N4]));
                y0 = fma(S[8], blk[5u * u][8u % N4], y0);
                S[9] = fma(S[9], blk[5u * u + 1u][9u % N4], fma(sa, blk[5u * u + 4u][9u % N4], v * blk[5u * u + 2u][9u % N4]));
                y1 = fma(S[9], blk[5u * u][9u % N4], y1);
                S[10] = fma(S[10], blk[5u * u + 1u][10u % N4], fma(sa, blk[5u * u + 4u][10u % N4], v * blk[5u * u + 2u][10u % N4]));
                y2 = fma(S[10], blk[5u * u][10u % N4], y2);
                S[11] = fma(S[11], blk[5u * u + 1u][11u % N4], fma(sa, blk[5u * u + 4u][11u % N4], v * blk[5u * u + 2u][11u % N4]));
                y3 = fma(S[11], blk[5u * u][11u % N4], y3);
            }
            if N4 > 12u {
                S[12] = fma(S[12], blk[5u * u + 1u][12u % N4], fma(sa, blk[5u * u + 4u][12u % N4], v * blk[5u * u + 2u][12u % N4]));
                y0 = fma(S[12], blk[5u * u][12u % N4], y0);
                S[13] = fma(S[13], blk[5u * u + 1u][13u % N4], fma(sa, blk[5u * u + 4u][13u % N4], v * blk[5u * u + 2u][13u % N4]));
                y1 = fma(S[13], blk[5u * u][13u % N4], y1);
                S[14] = fma(S[14], blk[5u * u + 1u][14u % N4], fma(sa, blk[5u * u + 4u][14u % N4], v * blk[5u * u + 2u][14u % N4]));
                y2 = fma(S[14], blk[5u * u][14u % N4], y2);
                S[15] = fma(S[15], blk[5u * u + 1u][15u % N4], fma(sa, blk[5u * u + 4u][15u % N4], v * blk[5u * u + 2u][15u % N4]));
                y3 = fma(S[15], blk[5u * u][15u % N4], y3);
            }
            let yy = (y0 + y1) + (y2 + y3);
            act[p.y + (t0 + u) * C + o] = yy.x + yy.y + yy.z + yy.w;
        }
    }
    store_row(hb, i, S);
}
