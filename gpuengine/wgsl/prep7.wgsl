// RWKV-7's time mixing for long segments, first of three kernels: what of
// each token depends on the token alone, in parallel over tokens × heads
// (one workgroup, N threads, channel i each), in place:
//   w ← exp(−e^−0.5·σ(w0 + w')), a ← −kk, b = kk·σ(a0 + a'),
//   k ← k⊙(1 + (σ(a0 + a') − 1)⊙k_a), v ← v + (v_first − v)⊙σ(v0 + v')
// (layer 0 records v as v_first), with kk = normalise(k⊙k_k) per head.
// recur7.wgsl runs the recurrence on these, post7.wgsl the rest.

struct Params {
    w: u32,  // activation offsets, [T][C] each
    a: u32,
    k: u32,
    v: u32,
    vg: u32,
    vf: u32,
    b: u32,
    first: u32, // 1 in layer 0
    w0: u32,    // arena offsets (float32)
    a0: u32,
    v0: u32,
    kk: u32,
    ka: u32,
    _0: u32,
    _1: u32,
    _2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

var<workgroup> sh: array<f32, N>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i]); }

@compute @workgroup_size(N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) i: u32) {
    let t = wid.x;
    if t >= n_tokens() {
        return;
    }
    let c = wid.y * N + i;
    let o = t * C + c;
    var k = act[p.k + o];
    let q = k * wf(p.kk + c);
    sh[i] = q * q;
    workgroupBarrier();
    var ss = 0.0;
    for (var j = 0u; j < N; j++) {
        ss += sh[j];
    }
    let kk = q / max(sqrt(ss), 1e-12);
    let a = sigmoid(wf(p.a0 + c) + act[p.a + o]);
    act[p.w + o] = exp(-0.6065306597126334 * sigmoid(wf(p.w0 + c) + act[p.w + o]));
    act[p.a + o] = -kk;
    act[p.b + o] = kk * a;
    act[p.k + o] = k * (1.0 + (a - 1.0) * wf(p.ka + c));
    let v = act[p.v + o];
    if p.first == 1u {
        act[p.vf + o] = v;
    } else {
        act[p.v + o] = v + (act[p.vf + o] - v) * sigmoid(wf(p.v0 + c) + act[p.vg + o]);
    }
}
