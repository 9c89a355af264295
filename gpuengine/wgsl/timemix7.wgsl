// RWKV-7 time mixing after the products (docs/rwkv-math.md, v7), one
// workgroup per (segment, head), thread i the head's channel i and row i of
// its state S (N×N, [value i][key j], kept in registers over the segment's
// tokens, which run in order):
//   w = exp(−e^−0.5·σ(w0 + w')), a = σ(a0 + a'), kk = normalise(k⊙k_k),
//   k ← k⊙(1 + (a − 1)⊙k_a), v ← v + (v_first − v)⊙σ(v0 + v') (layer 0
//   records v as v_first instead);
//   S[i][j] ← S[i][j]·w_j − (Σ_l S[i][l]·kk_l)·kk_j·a_j + v_i·k_j;
//   y_i = Σ_j S[i][j]·r_j; y = GroupNorm(y)·ln_x + bias;
//   out = (y + (Σ_j r_j·k_j·r_k_j)·v) ⊙ g.

struct Params {
    r: u32,  // activation offsets, [T][C] each: the products (w', a', v'
    w: u32,  // the second LoRA stages), the gate g, layer 0's values and
    k: u32,  // the output
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

var<workgroup> sh_q: array<f32, N>;
var<workgroup> sh_r: array<f32, N>;
var<workgroup> sh_w: array<f32, N>;
var<workgroup> sh_k: array<f32, N>;
var<workgroup> sh_a: array<f32, N>;
var<workgroup> sh_b: array<f32, N>;
var<workgroup> sh_x: array<f32, N>;
var<workgroup> sh_y: array<f32, N>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i]); }

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
    let c = h * N + i;
    let sb = slot * p.stride + p.mem + (h * N + i) * N;
    var S: array<f32, N>;
    for (var j = 0u; j < N; j++) {
        S[j] = st[sb + j];
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
    for (var t = start; t < end; t++) {
        let o = t * C + c;
        let w = exp(-0.6065306597126334 * sigmoid(w0 + act[p.w + o]));
        let a = sigmoid(a0 + act[p.a + o]);
        var k = act[p.k + o];
        let q = k * kkc;
        sh_q[i] = q;
        workgroupBarrier();
        var ss = 0.0;
        for (var j = 0u; j < N; j++) {
            ss += sh_q[j] * sh_q[j];
        }
        let kk = q / max(sqrt(ss), 1e-12);
        k *= 1.0 + (a - 1.0) * kac;
        var v = act[p.v + o];
        if p.first == 1u {
            act[p.vf + o] = v;
        } else {
            v += (act[p.vf + o] - v) * sigmoid(v0 + act[p.vg + o]);
        }
        let r = act[p.r + o];
        sh_r[i] = r;
        sh_w[i] = w;
        sh_k[i] = k;
        sh_a[i] = -kk;
        sh_b[i] = kk * a;
        sh_x[i] = r * k * rkc;
        workgroupBarrier();
        var sa = 0.0;
        for (var j = 0u; j < N; j++) {
            sa += S[j] * sh_a[j];
        }
        var y = 0.0;
        var bonus = 0.0;
        for (var j = 0u; j < N; j++) {
            S[j] = S[j] * sh_w[j] + sa * sh_b[j] + v * sh_k[j];
            y += S[j] * sh_r[j];
            bonus += sh_x[j];
        }
        sh_y[i] = y;
        workgroupBarrier();
        var mean = 0.0;
        for (var j = 0u; j < N; j++) {
            mean += sh_y[j];
        }
        mean /= f32(N);
        var vr = 0.0;
        for (var j = 0u; j < N; j++) {
            let d = sh_y[j] - mean;
            vr += d * d;
        }
        let yn = (y - mean) / sqrt(vr / f32(N) + 64e-5) * lnw + lnb;
        act[p.y + o] = (yn + bonus * v) * act[p.g + o];
        workgroupBarrier();
    }
    for (var j = 0u; j < N; j++) {
        st[sb + j] = S[j];
    }
}
