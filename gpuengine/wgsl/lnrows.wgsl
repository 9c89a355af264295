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

var<private> row: u32; // activation offset of the row normalised

fn rows_at(c: u32) -> vec4<f32> { return vec4<f32>(act[row + c], 0.0, 0.0, 0.0); }

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
    row = p.x + t * C;
    let st = ln_stats(lid);
    for (var c = lid; c < C; c += WG) {
        act[p.out + r * C + c] = (rows_at(c).x - st[0].x) * st[1].x * wf(p.w + c) + wf(p.b + c);
    }
}
