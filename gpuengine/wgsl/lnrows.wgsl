// out[r] = LN(x[token of output row r]): the final LayerNorm (ln_out) of the
// rows whose logits are wanted, packed; or with tokens = 1, out[t] =
// LN(x[t]) over the pass's tokens (ln0, in place: a workgroup reads its
// row whole before it writes).

struct Params {
    x: u32,   // activation offset of x [T][C]
    w: u32,   // arena offsets of the weight and bias
    b: u32,
    out: u32, // activation offset of the packed rows [R][C]
    tokens: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r = wg_index(wid, nwg);
    var t = r;
    if p.tokens == 1u {
        if r >= n_tokens() {
            return;
        }
    } else {
        if r >= n_rows() {
            return;
        }
        t = out_token(r);
    }
    var v: array<vec4<f32>, EPT>;
    for (var e = 0u; e < EPT; e++) {
        let c = lid + e * WG;
        if c < C {
            v[e].x = act[p.x + t * C + c];
        }
    }
    let st = ln_stats(v, lid);
    for (var e = 0u; e < EPT; e++) {
        let c = lid + e * WG;
        if c < C {
            act[p.out + r * C + c] = (v[e].x - st[0].x) * st[1].x * wf(p.w + c) + wf(p.b + c);
        }
    }
}
