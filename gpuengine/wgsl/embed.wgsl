// x[t] = emb[token t] for the tokens whose rows are in this piece of the
// float16 embedding (rows [r0, r0 + n)); the ln0 LayerNorm follows in
// place (lnrows.wgsl).

struct Params {
    emb: u32, // arena word offset of the piece
    r0: u32,
    n: u32,
    x: u32,   // activation offset of x [T][C]
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
    let tok = token_id(t);
    if tok < p.r0 || tok >= p.r0 + p.n {
        return;
    }
    let row = p.emb + (tok - p.r0) * (C / 2u);
    for (var c = lid; c < C; c += WG) {
        act[p.x + t * C + c] = unpack2x16float(wt[row + c / 2u])[c & 1u];
    }
}
