// RWKV-7's recurrence over long segments (see prep7.wgsl), one workgroup
// per (span, head) of 4·N threads: thread li keeps a quarter of row
// i = li mod N of the head's state S (N×N, [value i][key j]), columns
// j0 = (li / N)·N/4 onwards, in registers as Q = N/16 vec4 (N a multiple of
// 16 up to 64):
//   S[i][j] ← S[i][j]·w_j + (Σ_l S[i][l]·a_l)·b_j + v_i·k_j;  y_i = Σ_j S[i][j]·r_j
// y is left un-normalised for post7.wgsl. A row's four threads add their
// parts of Σ_l S[i][l]·a_l in workgroup memory (one barrier a token), and
// their parts of y_i too, which the first of them adds up after the next
// token's barrier. With one thread a row a token took a chain of 80
// workgroup-memory reads and as many multiply-adds, and the recurrence was
// 43% of a 2048-token pass of the 0.1B shape on an H200.
// The tokens' r, w, k, a, b, v come through workgroup memory BT tokens at a
// time (two barriers a block), the next block fetched into registers while
// this one is computed.
//
// The chain token after token is what bounds the recurrence, and a prompt
// has only as many workgroups as heads. So a long segment is cut into spans
// (common.wgsl) that run side by side. The update is linear in S: a span
// takes S to S·P + U, where U is the span run from S = 0 and P the span run
// from S = I without the v·k term (each row of I evolving as a row of S
// does). MODE 1 computes U and P of every span of a segment but its last
// (workgroups of heads H…2H−1 make P) into the span's scratch slot;
// carry7.wgsl chains them into each span's starting state, written in U's
// place; MODE 0 then runs each span from its starting state, writing y, and
// the segment's last span leaves the state. A segment of one span starts
// from its state, as the whole segment did before spans. The scratch holds
// U and P row after row (S[i][j] at i·N + j), U first, of each head in turn.

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
    scratch: u32, // activation offset of the spans' slots
}

const BT: u32 = 8u;   // tokens a block: 2 for each of a row's 4 threads to fetch
const BLK: u32 = 40u; // 5·BT
const Q: u32 = N / 16u;
const THREADS: u32 = 4u * N;
const H: u32 = C / N;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

// Token u of a block: rows 5u…5u+4 quads of the channels of r, w, k, a, b;
// vs[u] the values (a thread of row i reads v_i only).
var<workgroup> blk: array<array<vec4<f32>, N4>, BLK>;
var<workgroup> vs: array<array<f32, N>, BT>;
// The parts of Σ_l S[i][l]·a_l and of y_i, row 4·(u mod 2) + part of
// token u.
var<workgroup> sh_sa: array<array<f32, N>, 8>;
var<workgroup> sh_y: array<array<f32, N>, 8>;

// fetch2 reads channel o of tokens t, t+1 of the tensor at off, zero past end.
fn fetch2(off: u32, t: u32, end: u32, o: u32) -> vec2<f32> {
    var v: vec2<f32>;
    if t < end { v.x = act[off + t * C + o]; }
    if t + 1u < end { v.y = act[off + (t + 1u) * C + o]; }
    return v;
}

// Two tokens of a channel of r, w, k, a, b, v, fetched into registers.
struct Block {
    r: vec2<f32>,
    w: vec2<f32>,
    k: vec2<f32>,
    a: vec2<f32>,
    b: vec2<f32>,
    v: vec2<f32>,
}

fn fetch(t: u32, end: u32, o: u32) -> Block {
    var b: Block;
    b.r = fetch2(p.r, t, end, o);
    b.w = fetch2(p.w, t, end, o);
    b.k = fetch2(p.k, t, end, o);
    b.a = fetch2(p.a, t, end, o);
    b.b = fetch2(p.b, t, end, o);
    b.v = fetch2(p.v, t, end, o);
    return b;
}

// put2 stores tokens u, u+1 of tensor f (0 r, 1 w, 2 k, 3 a, 4 b) of
// channel i.
fn put2(f: u32, u: u32, i: u32, v: vec2<f32>) {
    blk[5u * u + f][i / 4u][i % 4u] = v.x;
    blk[5u * (u + 1u) + f][i / 4u][i % 4u] = v.y;
}

fn put(b: Block, u: u32, i: u32) {
    put2(0u, u, i, b.r);
    put2(1u, u, i, b.w);
    put2(2u, u, i, b.k);
    put2(3u, u, i, b.a);
    put2(4u, u, i, b.b);
    vs[u][i] = b.v.x;
    vs[u + 1u][i] = b.v.y;
}

// row_y adds up y_i of the token whose parts are in rows at…at+3.
fn row_y(at: u32, i: u32) -> f32 {
    return (sh_y[at][i] + sh_y[at + 1u][i]) + (sh_y[at + 2u][i] + sh_y[at + 3u][i]);
}

// sc_base is where part z (0 U, 1 P) of head h of scratch slot x starts.
fn sc_base(x: u32, z: u32, h: u32) -> u32 { return p.scratch + (2u * x + z) * C * N + h * N * N; }

fn sc_ld4(b: u32, i: u32, j: u32) -> vec4<f32> {
    let o = b + i * N + j;
    return vec4<f32>(act[o], act[o + 1u], act[o + 2u], act[o + 3u]);
}

fn sc_st4(b: u32, i: u32, j: u32, v: vec4<f32>) {
    let o = b + i * N + j;
    act[o] = v.x;
    act[o + 1u] = v.y;
    act[o + 2u] = v.z;
    act[o + 3u] = v.w;
}

// sc_load reads S[i][j0…j0 + 4·Q) of the scratch matrix at b.
fn sc_load(b: u32, i: u32, j0: u32) -> array<vec4<f32>, 4> {
    var S: array<vec4<f32>, 4>;
    S[0] = sc_ld4(b, i, j0);
    if Q > 1u {
        S[1] = sc_ld4(b, i, j0 + 4u);
    }
    if Q > 2u {
        S[2] = sc_ld4(b, i, j0 + 8u);
    }
    if Q > 3u {
        S[3] = sc_ld4(b, i, j0 + 12u);
    }
    return S;
}

fn sc_store(b: u32, i: u32, j0: u32, S: array<vec4<f32>, 4>) {
    sc_st4(b, i, j0, S[0]);
    if Q > 1u {
        sc_st4(b, i, j0 + 4u, S[1]);
    }
    if Q > 2u {
        sc_st4(b, i, j0 + 8u, S[2]);
    }
    if Q > 3u {
        sc_st4(b, i, j0 + 12u, S[3]);
    }
}

// identity is I[i][j0…j0 + 4·Q).
fn identity(i: u32, j0: u32) -> array<vec4<f32>, 4> {
    var S: array<vec4<f32>, 4>;
    let one = vec4<f32>(1.0);
    let zero = vec4<f32>(0.0);
    let d = vec4<u32>(0u, 1u, 2u, 3u);
    S[0] = select(zero, one, vec4<u32>(j0) + d == vec4<u32>(i));
    if Q > 1u {
        S[1] = select(zero, one, vec4<u32>(j0 + 4u) + d == vec4<u32>(i));
    }
    if Q > 2u {
        S[2] = select(zero, one, vec4<u32>(j0 + 8u) + d == vec4<u32>(i));
    }
    if Q > 3u {
        S[3] = select(zero, one, vec4<u32>(j0 + 12u) + d == vec4<u32>(i));
    }
    return S;
}

// Constant indices only into S (a private array indexed by a variable
// lives in local memory): the quads are written out, those past Q removed
// by the compiler.
@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.y % H;
    let pm = MODE == 1u && wid.y >= H; // making P
    let sp = span(wid.x, p.slot0, p.nslots);
    if !sp.ok || (MODE == 1u && (sp.scratch == NO_SCRATCH || sp.last)) {
        return;
    }
    let start = sp.start;
    let end = sp.end;
    if end == start {
        return;
    }
    let i = li % N;
    let q = li / N;
    let c0 = q * Q; // this thread's first quad of a row
    let o = h * N + i;
    let hb = sp.slot * p.stride + p.mem + h * N * N;
    var S: array<vec4<f32>, 4>;
    if MODE == 0u {
        if sp.scratch == NO_SCRATCH {
            S = load_part(hb, i, 4u * c0);
        } else {
            S = sc_load(sc_base(sp.scratch, 0u, h), i, 4u * c0);
        }
    } else if pm {
        S = identity(i, 4u * c0);
    }
    var next = fetch(start + 2u * q, end, o);
    for (var t0 = start; t0 < end; t0 += BT) {
        let n = min(BT, end - t0);
        workgroupBarrier();
        if MODE == 0u && q == 0u && t0 > start {
            act[p.y + (t0 - 1u) * C + o] = row_y(4u * ((t0 - 1u - start) & 1u), i);
        }
        put(next, 2u * q, i);
        workgroupBarrier();
        if t0 + BT < end {
            next = fetch(t0 + BT + 2u * q, end, o);
        }
        for (var u = 0u; u < n; u++) {
            let par = 4u * (u & 1u);
            let a = 5u * u + 3u;
            var d = S[0] * blk[a][c0];
            if Q > 1u {
                d = fma(S[1], blk[a][c0 + 1u], d);
            }
            if Q > 2u {
                d = fma(S[2], blk[a][c0 + 2u], d);
            }
            if Q > 3u {
                d = fma(S[3], blk[a][c0 + 3u], d);
            }
            sh_sa[par + q][i] = (d.x + d.y) + (d.z + d.w);
            workgroupBarrier();
            let sa = vec4<f32>((sh_sa[par][i] + sh_sa[par + 1u][i]) + (sh_sa[par + 2u][i] + sh_sa[par + 3u][i]));
            if MODE == 0u && q == 0u && u > 0u {
                act[p.y + (t0 + u - 1u) * C + o] = row_y(4u - par, i);
            }
            let v = vec4<f32>(select(vs[u][i], 0.0, pm));
            let r = 5u * u;
            let w = r + 1u;
            let k = r + 2u;
            let b = r + 4u;
            S[0] = fma(S[0], blk[w][c0], fma(sa, blk[b][c0], v * blk[k][c0]));
            var y = S[0] * blk[r][c0];
            if Q > 1u {
                S[1] = fma(S[1], blk[w][c0 + 1u], fma(sa, blk[b][c0 + 1u], v * blk[k][c0 + 1u]));
                y = fma(S[1], blk[r][c0 + 1u], y);
            }
            if Q > 2u {
                S[2] = fma(S[2], blk[w][c0 + 2u], fma(sa, blk[b][c0 + 2u], v * blk[k][c0 + 2u]));
                y = fma(S[2], blk[r][c0 + 2u], y);
            }
            if Q > 3u {
                S[3] = fma(S[3], blk[w][c0 + 3u], fma(sa, blk[b][c0 + 3u], v * blk[k][c0 + 3u]));
                y = fma(S[3], blk[r][c0 + 3u], y);
            }
            if MODE == 0u {
                sh_y[par + q][i] = (y.x + y.y) + (y.z + y.w);
            }
        }
    }
    if MODE == 1u {
        sc_store(sc_base(sp.scratch, select(0u, 1u, pm), h), i, 4u * c0, S);
        return;
    }
    workgroupBarrier();
    if q == 0u {
        act[p.y + (end - 1u) * C + o] = row_y(4u * ((end - 1u - start) & 1u), i);
    }
    if sp.last {
        store_part(hb, i, 4u * c0, S);
    }
}
