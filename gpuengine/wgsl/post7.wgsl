// RWKV-7's time mixing for long segments, last of three kernels, over
// tokens × heads in parallel: out = (GroupNorm(y)·ln_x + bias +
// (Σ_j r_j·k_j·r_k_j)·v) ⊙ g, in place over y (k and v as prep7.wgsl left them).

struct Params {
    r: u32,  // activation offsets, [T][C] each
    k: u32,
    v: u32,
    g: u32,
    y: u32,
    rk: u32, // arena offsets (float32)
    lnw: u32,
    lnb: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

var<workgroup> sh_y: array<vec4<f32>, HQ>;
var<workgroup> sx: array<vec4<f32>, HQ>;

fn wf(i: u32) -> f32 { return bitcast<f32>(wt[i]); }

@compute @workgroup_size(N)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) i: u32) {
    let t = wid.x;
    if t >= n_tokens() {
        return;
    }
    let c = wid.y * N + i;
    let o = t * C + c;
    let y = act[p.y + o];
    sh_y[i / 4u][i % 4u] = y;
    sx[i / 4u][i % 4u] = act[p.r + o] * act[p.k + o] * wf(p.rk + c);
    workgroupBarrier();
    var b = vec4<f32>(0.0);
    for (var j = 0u; j < HQ; j++) {
        b += sx[j];
    }
    let bonus = b.x + b.y + b.z + b.w;
    let yn = head_norm(y) * wf(p.lnw + c) + wf(p.lnb + c);
    act[p.y + o] = (yn + bonus * act[p.v + o]) * act[p.g + o];
}
