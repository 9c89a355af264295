// The time mixing of RWKV-5 and RWKV-6 after the products (docs/rwkv-math.md,
// v5 family and v6), one workgroup per (segment, head). Per head the state
// S is N×N, [key i][value j]; thread j holds column j over the segment's
// tokens, which run in order, and prepares channel j of the head:
//   y_j = Σ_i r_i·(u_i·k_i·v_j + S[i][j]);  S[i][j] ← k_i·v_j + w_i·S[i][j]
//   out = GroupNorm(y)·ln_x + bias, times the gate g when there is one.
// The decay w is fixed per channel (v5: the arena holds exp(−exp(decay)))
// or, in v6, exp(−exp(time_decay + w')) from the decay LoRA's output w'.

struct Params {
    r: u32,      // activation offsets, [T][C] each
    k: u32,
    v: u32,
    w: u32,      // v6: the decay LoRA's output
    g: u32,      // the gate (already through SiLU), when gated
    y: u32,
    gated: u32,
    v6: u32,
    stride: u32, // floats per state slot
    mem: u32,    // offset of S within a slot
    decay: u32,  // arena offsets (float32)
    first: u32,
    lnw: u32,
    lnb: u32,
    slot0: u32,  // the first state slot of the bound buffer, which holds
    nslots: u32, // nslots: this dispatch serves the segments of those only
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

var<workgroup> sh_r: array<f32, N>;
var<workgroup> sh_k: array<f32, N>;
var<workgroup> sh_w: array<f32, N>;
var<workgroup> sh_u: array<f32, N>;
var<workgroup> sh_y: array<vec4<f32>, HQ>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i]); }

@compute @workgroup_size(N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) j: u32) {
    let h = wid.y;
    let sg = segment(wid.x, p.slot0, p.nslots);
    if !sg.ok {
        return;
    }
    let c = h * N + j;
    let sb = sg.slot * p.stride + p.mem + h * N * N + j;
    var S: array<f32, N>;
    for (var i = 0u; i < N; i++) {
        S[i] = st[sb + i * N];
    }
    let decay = wf(p.decay + c);
    let u = wf(p.first + c);
    let lnw = wf(p.lnw + c);
    let lnb = wf(p.lnb + c);
    for (var t = sg.start; t < sg.end; t++) {
        let o = t * C + c;
        var w = decay;
        if p.v6 == 1u {
            w = exp(-exp(decay + act[p.w + o]));
        }
        let k = act[p.k + o];
        let r = act[p.r + o];
        sh_r[j] = r;
        sh_k[j] = k;
        sh_w[j] = w;
        sh_u[j] = r * u * k;
        workgroupBarrier();
        let v = act[p.v + o];
        var y = 0.0;
        var ruk = 0.0;
        for (var i = 0u; i < N; i++) {
            y += sh_r[i] * S[i];
            ruk += sh_u[i];
            S[i] = sh_k[i] * v + sh_w[i] * S[i];
        }
        y += ruk * v;
        sh_y[j / 4u][j % 4u] = y;
        workgroupBarrier();
        var out = head_norm(y) * lnw + lnb;
        if p.gated == 1u {
            out *= act[p.g + o];
        }
        act[p.y + o] = out;
        workgroupBarrier();
    }
    for (var i = 0u; i < N; i++) {
        st[sb + i * N] = S[i];
    }
}
