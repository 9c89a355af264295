// RWKV-7's recurrence over long segments (see prep7.wgsl), one workgroup
// per (segment, head), thread i row i of the head's state S (N×N, [value i]
// [key j], in registers as N/4 vec4). The tokens' r, w, k, a, b come through
// workgroup memory BT tokens at a time, so a block costs two barriers
// rather than some per token:
//   S[i][j] ← S[i][j]·w_j + (Σ_l S[i][l]·a_l)·b_j + v_i·k_j;  y_i = Σ_j S[i][j]·r_j
// y is left un-normalised for post7.wgsl.

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
    _0: u32,
}

const BT: u32 = 8u;
const N4: u32 = N / 4u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

var<workgroup> sr: array<array<vec4<f32>, N4>, BT>;
var<workgroup> sw: array<array<vec4<f32>, N4>, BT>;
var<workgroup> sk: array<array<vec4<f32>, N4>, BT>;
var<workgroup> sa: array<array<vec4<f32>, N4>, BT>;
var<workgroup> sb: array<array<vec4<f32>, N4>, BT>;

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
    let base = slot * p.stride + p.mem + (h * N + i) * N;
    var S: array<vec4<f32>, N4>;
    for (var j = 0u; j < N4; j++) {
        S[j] = vec4<f32>(st[base + 4u * j], st[base + 4u * j + 1u], st[base + 4u * j + 2u], st[base + 4u * j + 3u]);
    }
    for (var t0 = start; t0 < end; t0 += BT) {
        let n = min(BT, end - t0);
        // Thread i loads channel i of every token of the block.
        for (var u = 0u; u < n; u++) {
            let o = (t0 + u) * C + h * N + i;
            sr[u][i / 4u][i % 4u] = act[p.r + o];
            sw[u][i / 4u][i % 4u] = act[p.w + o];
            sk[u][i / 4u][i % 4u] = act[p.k + o];
            sa[u][i / 4u][i % 4u] = act[p.a + o];
            sb[u][i / 4u][i % 4u] = act[p.b + o];
        }
        workgroupBarrier();
        for (var u = 0u; u < n; u++) {
            let o = (t0 + u) * C + h * N + i;
            let v = act[p.v + o];
            var dot_a = vec4<f32>(0.0);
            for (var j = 0u; j < N4; j++) {
                dot_a += S[j] * sa[u][j];
            }
            let sum_a = dot_a.x + dot_a.y + dot_a.z + dot_a.w;
            var y = vec4<f32>(0.0);
            for (var j = 0u; j < N4; j++) {
                S[j] = S[j] * sw[u][j] + sum_a * sb[u][j] + v * sk[u][j];
                y += S[j] * sr[u][j];
            }
            act[p.y + o] = y.x + y.y + y.z + y.w;
        }
        workgroupBarrier();
    }
    for (var j = 0u; j < N4; j++) {
        st[base + 4u * j] = S[j].x;
        st[base + 4u * j + 1u] = S[j].y;
        st[base + 4u * j + 2u] = S[j].z;
        st[base + 4u * j + 3u] = S[j].w;
    }
}
