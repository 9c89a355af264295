// RWKV-7 time mixing after the products (docs/rwkv-math.md, v7), one
// workgroup per (segment, head) of N·LL threads; threads 0…N−1 are the
// head's channels, thread i channel i and row i of its state S (N×N,
// [value i][key j], stored by columns (state7.wgsl), kept in registers
// over the segment's tokens, which run in order):
//   w = exp(−e^−0.5·σ(w0 + w')), a = σ(a0 + a'), kk = normalise(k⊙k_k),
//   k ← k⊙(1 + (a − 1)⊙k_a), v ← v + (v_first − v)⊙σ(v0 + v') (layer 0
//   records v as v_first instead);
//   S[i][j] ← S[i][j]·w_j − (Σ_l S[i][l]·kk_l)·kk_j·a_j + v_i·k_j;
//   y_i = Σ_j S[i][j]·r_j; y = GroupNorm(y)·ln_x + bias;
//   out = (y + (Σ_j r_j·k_j·r_k_j)·v) ⊙ g.
//
// With LORA = 1 (a constant from the host, as are LL and D) the kernel
// makes the second LoRA stages of its channels itself, w' = W2·hw,
// a' = A2·ha, g = G2·hg and v' = V2·hv (not in layer 0), from the first
// stages' outputs hw, ha, hg, hv (DW, DA, DG, DV values a token) and the
// float16 matrices ([C][D], row c channel c's) in the bound arena. A
// token's first stages go to workgroup memory, which every thread reads;
// thread li takes words of 8 values q, q + LL, q + 2·LL, … (q = li mod LL)
// of the rows of channel li / LL, so that adjacent threads read adjacent
// words, and the LL partial sums of a channel meet in workgroup memory. D
// is a multiple of 32 and LL 1, 2 or 4: every loop over a row has a
// constant trip count. With LORA = 0 w', a', g and v' are in the
// activations (a separate dispatch's products).

struct Params {
    r: u32,  // activation offsets, [T][C] each: the products (w', a', v'
    w: u32,  // and the gate g the second LoRA stages', read where LORA =
    k: u32,  // 0), layer 0's values and the output
    v: u32,
    a: u32,
    g: u32,
    vg: u32,
    vf: u32,
    y: u32,
    first: u32,  // 1 in layer 0
    stride: u32, // floats per state slot
    mem: u32,    // offset of S within a slot
    w0: u32,     // arena offsets of the vectors (float32)
    a0: u32,
    v0: u32,
    kk: u32,
    ka: u32,
    rk: u32,
    lnw: u32,
    lnb: u32,
    slot0: u32,  // the first state slot of the bound buffer, which holds
    nslots: u32, // nslots: this dispatch serves the segments of those only
    hw: u32,     // activation offsets of the first stages, [T][D] each
    ha: u32,
    hg: u32,
    hv: u32,
    w2: u32,     // arena word offsets of the second stages' matrices
    a2: u32,
    g2: u32,
    v2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

// A token's r, w, k, −kk, kk⊙a as quads of channels, for the state update.
var<workgroup> sh_r: array<vec4<f32>, N4>;
var<workgroup> sh_w: array<vec4<f32>, N4>;
var<workgroup> sh_k: array<vec4<f32>, N4>;
var<workgroup> sh_a: array<vec4<f32>, N4>;
var<workgroup> sh_b: array<vec4<f32>, N4>;
var<workgroup> sh_q: array<vec4<f32>, N4>;
var<workgroup> sh_x: array<vec4<f32>, N4>;
var<workgroup> sh_y: array<vec4<f32>, HQ>; // head_norm's (headnorm.wgsl)

const THREADS: u32 = N * LL;

// Workgroup memory of the LoRA stages, LORA4 vec4s from the host (N·LL +
// (DW + DA + DG + DV)/4, N without them): each thread's partial (w', a',
// g, v'), then a token's hw, ha, hg, hv from these offsets.
const HW: u32 = THREADS;
const HA: u32 = HW + DW / 4u;
const HG: u32 = HA + DA / 4u;
const HV: u32 = HG + DG / 4u;

var<workgroup> sh_lo: array<vec4<f32>, LORA4>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i >> 2u][i & 3u]); }

// load_h copies n4 vec4s of the activations from src to sh_lo from at.
fn load_h(at: u32, src: u32, n4: u32, li: u32) {
    for (var j = li; j < n4; j += THREADS) {
        let b = src + 4u * j;
        sh_lo[at + j] = vec4<f32>(act[b], act[b + 1u], act[b + 2u], act[b + 3u]);
    }
}

// dot8 is the product of 8 float16 values with sh_lo[x], sh_lo[x + 1].
fn dot8(m: vec4<u32>, x: u32) -> f32 {
    return dot(vec4<f32>(unpack2x16float(m.x), unpack2x16float(m.y)), sh_lo[x]) +
           dot(vec4<f32>(unpack2x16float(m.z), unpack2x16float(m.w)), sh_lo[x + 1u]);
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let h = wid.y;
    let sg = segment(wid.x, p.slot0, p.nslots);
    if !sg.ok {
        return;
    }
    let start = sg.start;
    let end = sg.end;
    let own = li < N; // a channel's thread
    let i = li % N;
    let c = h * N + i;
    let hb = sg.slot * p.stride + p.mem + h * N * N;
    // S by constant indices only (see state7.wgsl): a quad c of the shared
    // arrays is read as c % N4, in bounds where the code is removed.
    var S: array<vec4<f32>, 16>;
    if own {
        S = load_row(hb, i);
    }
    let w0 = wf(p.w0 + c);
    let a0 = wf(p.a0 + c);
    let kkc = wf(p.kk + c);
    let kac = wf(p.ka + c);
    let rkc = wf(p.rk + c);
    let lnw = wf(p.lnw + c);
    let lnb = wf(p.lnb + c);
    var v0 = 0.0;
    if p.first == 0u {
        v0 = wf(p.v0 + c);
    }
    // This thread's share of the LoRA rows: words q, q + LL, … of channel lc's.
    let q = li % LL;
    let lc = h * N + li / LL;
    let rw = (p.w2 + lc * (DW / 2u)) / 4u + q;
    let ra = (p.a2 + lc * (DA / 2u)) / 4u + q;
    let rg = (p.g2 + lc * (DG / 2u)) / 4u + q;
    let rv = (p.v2 + lc * (DV / 2u)) / 4u + q;
    for (var t = start; t < end; t++) {
        let o = t * C + c;
        var lo: vec4<f32>; // w', a', g, v'
        if LORA == 1u {
            load_h(HW, p.hw + t * DW, DW / 4u, li);
            load_h(HA, p.ha + t * DA, DA / 4u, li);
            load_h(HG, p.hg + t * DG, DG / 4u, li);
            if p.first == 0u {
                load_h(HV, p.hv + t * DV, DV / 4u, li);
            }
            workgroupBarrier();
            var part = vec4<f32>(0.0);
            for (var k = 0u; k < DW / 8u / LL; k++) {
                part.x += dot8(wt[rw + k * LL], HW + 2u * (q + k * LL));
            }
            for (var k = 0u; k < DA / 8u / LL; k++) {
                part.y += dot8(wt[ra + k * LL], HA + 2u * (q + k * LL));
            }
            for (var k = 0u; k < DG / 8u / LL; k++) {
                part.z += dot8(wt[rg + k * LL], HG + 2u * (q + k * LL));
            }
            if p.first == 0u {
                for (var k = 0u; k < DV / 8u / LL; k++) {
                    part.w += dot8(wt[rv + k * LL], HV + 2u * (q + k * LL));
                }
            }
            sh_lo[li] = part;
            workgroupBarrier();
            lo = sh_lo[i * LL];
            for (var j = 1u; j < LL; j++) {
                lo += sh_lo[i * LL + j];
            }
        } else {
            lo = vec4<f32>(act[p.w + o], act[p.a + o], act[p.g + o], act[p.vg + o]);
        }
        if own {
            sh_q[i / 4u][i % 4u] = act[p.k + o] * kkc;
        }
        workgroupBarrier();
        var v = 0.0;
        var bonus = 0.0;
        var y = 0.0;
        if own {
            let w = exp(-0.6065306597126334 * sigmoid(w0 + lo.x));
            let a = sigmoid(a0 + lo.y);
            var sq = vec4<f32>(0.0);
            for (var j = 0u; j < N4; j++) {
                sq += sh_q[j] * sh_q[j];
            }
            let ss = sq.x + sq.y + sq.z + sq.w;
            let kk = sh_q[i / 4u][i % 4u] / max(sqrt(ss), 1e-12);
            let k = act[p.k + o] * (1.0 + (a - 1.0) * kac);
            v = act[p.v + o];
            if p.first == 1u {
                act[p.vf + o] = v;
            } else {
                v += (act[p.vf + o] - v) * sigmoid(v0 + lo.w);
            }
            let r = act[p.r + o];
            let qd = i / 4u;
            let qc = i % 4u;
            sh_r[qd][qc] = r;
            sh_w[qd][qc] = w;
            sh_k[qd][qc] = k;
            sh_a[qd][qc] = -kk;
            sh_b[qd][qc] = kk * a;
            sh_x[i / 4u][i % 4u] = r * k * rkc;
        }
        workgroupBarrier();
        if own {
            var d0 = vec4<f32>(0.0);
            var d1 = vec4<f32>(0.0);
            var d2 = vec4<f32>(0.0);
            var d3 = vec4<f32>(0.0);
            d0 = fma(S[0], sh_a[0], d0);
            d1 = fma(S[1], sh_a[1], d1);
            d2 = fma(S[2], sh_a[2], d2);
            d3 = fma(S[3], sh_a[3], d3);
            if N4 > 4u {
                d0 = fma(S[4], sh_a[4u % N4], d0);
                d1 = fma(S[5], sh_a[5u % N4], d1);
                d2 = fma(S[6], sh_a[6u % N4], d2);
                d3 = fma(S[7], sh_a[7u % N4], d3);
            }
            if N4 > 8u {
                d0 = fma(S[8], sh_a[8u % N4], d0);
                d1 = fma(S[9], sh_a[9u % N4], d1);
                d2 = fma(S[10], sh_a[10u % N4], d2);
                d3 = fma(S[11], sh_a[11u % N4], d3);
            }
            if N4 > 12u {
                d0 = fma(S[12], sh_a[12u % N4], d0);
                d1 = fma(S[13], sh_a[13u % N4], d1);
                d2 = fma(S[14], sh_a[14u % N4], d2);
                d3 = fma(S[15], sh_a[15u % N4], d3);
            }
            let dd = (d0 + d1) + (d2 + d3);
            let sa = vec4<f32>(dd.x + dd.y + dd.z + dd.w);
            let vv = vec4<f32>(v);
            var y0 = vec4<f32>(0.0);
            var y1 = vec4<f32>(0.0);
            var y2 = vec4<f32>(0.0);
            var y3 = vec4<f32>(0.0);
            S[0] = fma(S[0], sh_w[0], fma(sa, sh_b[0], vv * sh_k[0]));
            y0 = fma(S[0], sh_r[0], y0);
            S[1] = fma(S[1], sh_w[1], fma(sa, sh_b[1], vv * sh_k[1]));
            y1 = fma(S[1], sh_r[1], y1);
            S[2] = fma(S[2], sh_w[2], fma(sa, sh_b[2], vv * sh_k[2]));
            y2 = fma(S[2], sh_r[2], y2);
            S[3] = fma(S[3], sh_w[3], fma(sa, sh_b[3], vv * sh_k[3]));
            y3 = fma(S[3], sh_r[3], y3);
            if N4 > 4u {
                S[4] = fma(S[4], sh_w[4u % N4], fma(sa, sh_b[4u % N4], vv * sh_k[4u % N4]));
                y0 = fma(S[4], sh_r[4u % N4], y0);
                S[5] = fma(S[5], sh_w[5u % N4], fma(sa, sh_b[5u % N4], vv * sh_k[5u % N4]));
                y1 = fma(S[5], sh_r[5u % N4], y1);
                S[6] = fma(S[6], sh_w[6u % N4], fma(sa, sh_b[6u % N4], vv * sh_k[6u % N4]));
                y2 = fma(S[6], sh_r[6u % N4], y2);
                S[7] = fma(S[7], sh_w[7u % N4], fma(sa, sh_b[7u % N4], vv * sh_k[7u % N4]));
                y3 = fma(S[7], sh_r[7u % N4], y3);
            }
            if N4 > 8u {
                S[8] = fma(S[8], sh_w[8u % N4], fma(sa, sh_b[8u % N4], vv * sh_k[8u % N4]));
                y0 = fma(S[8], sh_r[8u % N4], y0);
                S[9] = fma(S[9], sh_w[9u % N4], fma(sa, sh_b[9u % N4], vv * sh_k[9u % N4]));
                y1 = fma(S[9], sh_r[9u % N4], y1);
                S[10] = fma(S[10], sh_w[10u % N4], fma(sa, sh_b[10u % N4], vv * sh_k[10u % N4]));
                y2 = fma(S[10], sh_r[10u % N4], y2);
                S[11] = fma(S[11], sh_w[11u % N4], fma(sa, sh_b[11u % N4], vv * sh_k[11u % N4]));
                y3 = fma(S[11], sh_r[11u % N4], y3);
            }
            if N4 > 12u {
                S[12] = fma(S[12], sh_w[12u % N4], fma(sa, sh_b[12u % N4], vv * sh_k[12u % N4]));
                y0 = fma(S[12], sh_r[12u % N4], y0);
                S[13] = fma(S[13], sh_w[13u % N4], fma(sa, sh_b[13u % N4], vv * sh_k[13u % N4]));
                y1 = fma(S[13], sh_r[13u % N4], y1);
                S[14] = fma(S[14], sh_w[14u % N4], fma(sa, sh_b[14u % N4], vv * sh_k[14u % N4]));
                y2 = fma(S[14], sh_r[14u % N4], y2);
                S[15] = fma(S[15], sh_w[15u % N4], fma(sa, sh_b[15u % N4], vv * sh_k[15u % N4]));
                y3 = fma(S[15], sh_r[15u % N4], y3);
            }
            let yy = (y0 + y1) + (y2 + y3);
            y = yy.x + yy.y + yy.z + yy.w;
            var bx = vec4<f32>(0.0);
            for (var j = 0u; j < N4; j++) {
                bx += sh_x[j];
            }
            bonus = bx.x + bx.y + bx.z + bx.w;
            sh_y[i / 4u][i % 4u] = y;
        }
        workgroupBarrier();
        if own {
            let yn = head_norm(y) * lnw + lnb;
            act[p.y + o] = (yn + bonus * v) * lo.z;
        }
        // The next token writes sh_y only after two barriers: none needed here.
    }
    if own {
        store_row(hb, i, S);
    }
}
