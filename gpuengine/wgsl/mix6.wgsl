// RWKV-6's data-dependent token shift, the step after the mix LoRA:
// x_f = xa + sx·(maa_f + m_f) for f = w, k, v, r, g, in place over m_f
// (sx = prev − xa). One workgroup per token.

struct Params {
    xa: u32,
    sx: u32,
    _0: u32,
    _1: u32,
    maa: array<vec4<u32>, 2>, // arena offsets of time_mix_w … _g
    m: array<vec4<u32>, 2>,   // activation offsets of m_w … m_g, [T][C] each
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let t = wg_index(wid, nwg);
    if t >= n_tokens() {
        return;
    }
    for (var c = lid; c < C; c += WG) {
        let o = t * C + c;
        let xa = act[p.xa + o];
        let sx = act[p.sx + o];
        for (var f = 0u; f < 5u; f++) {
            let i = p.m[f >> 2u][f & 3u] + o;
            act[i] = xa + sx * (bitcast<f32>(wt[p.maa[f >> 2u][f & 3u] + c]) + act[i]);
        }
    }
}
