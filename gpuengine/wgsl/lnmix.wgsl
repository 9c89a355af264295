// The LayerNorm in front of a time mix or channel mix, and its token shift:
// xa = LN(x[t]); prev = LN(x[t−1]), or for a segment's first token the
// shift state of its sequence; then per mix vector m one output:
//   mode 0:  xa + (prev − xa)·m          (v6, v7)
//   mode 1:  xa·m + prev·(1 − m)         (v4, v5)
//   mode 2:  out0 = xa, out1 = prev − xa, out2 = xa + (prev − xa)·m (v6
//            time mix, whose other mixes depend on the data)
// A token's channels are shared out among `groups` workgroups, each
// computing the row's statistics itself: one workgroup per row spent most of
// its time waiting on the chain of loads its 6 mixes × C/WG channels make.
// The workgroups of a segment's first token are the only readers of the
// segment's shift state, so they also write the new one, LN(x[last]), after
// reading the old (each thread its own channels): no other workgroup races.

struct Params {
    x: u32,      // activation offset of x [T][C]
    w: u32,      // arena offsets of the LayerNorm weight and bias
    b: u32,
    shift: u32,  // offset of the shift state within a state slot
    stride: u32, // floats per state slot
    mode: u32,
    nmix: u32,
    slot0: u32,  // the first state slot of the bound buffer, which holds
    nslots: u32, // nslots: this dispatch serves the tokens of those only
    groups: u32, // workgroups per token, each WG channels but the last
    _1: u32,
    _2: u32,
    mix: array<vec4<u32>, 2>, // arena offsets of the mix vectors
    out: array<vec4<u32>, 2>, // activation offsets of the outputs [T][C]
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> act: array<f32>;
@group(0) @binding(4) var<storage, read_write> st: array<f32>;

// The rows this workgroup normalises: x = its token, y = the previous one,
// z = the segment's last (y for a segment's first token, z for the others
// read as 0).
var<private> row_t: u32;
var<private> row_prev: u32;
var<private> row_last: u32;
var<private> first: bool;

fn rows_at(c: u32) -> vec4<f32> {
    if first {
        return vec4<f32>(act[row_t + c], 0.0, act[row_last + c], 0.0);
    }
    return vec4<f32>(act[row_t + c], act[row_prev + c], 0.0, 0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wi = wg_index(wid, nwg);
    let t = wi / p.groups;
    let c0 = (wi % p.groups) * WG;
    let c1 = min(C, c0 + WG);
    if t >= n_tokens() {
        return;
    }
    let s = token_seg(t);
    let start = seg_start(s);
    let last = start + seg_len(s) - 1u;
    first = t == start;
    let slot = seg_slot(s) - p.slot0;
    if slot >= p.nslots {
        return;
    }
    row_t = p.x + t * C;
    row_prev = p.x + (max(t, 1u) - 1u) * C;
    row_last = p.x + last * C;
    // A thread has at most one channel (c1 − c0 ≤ WG). Its vectors and
    // shift state are read before the statistics, so that those loads
    // (from memory: the weights streamed through the cache since the last
    // step) are in flight during the reductions instead of after them.
    let c = c0 + lid;
    let live = c < c1;
    var w = 0.0;
    var b = 0.0;
    var old = 0.0;
    var m: array<f32, 8>;
    let si = slot * p.stride + p.shift + c;
    if live {
        w = wf(p.w + c);
        b = wf(p.b + c);
        if first {
            old = st[si];
        }
        for (var f = 0u; f < 8u; f++) {
            if f < p.nmix {
                m[f] = wf(p.mix[f >> 2u][f & 3u] + c);
            }
        }
    }
    let ln = ln_stats(lid);
    if !live {
        return;
    }
    let n = (rows_at(c) - ln[0]) * ln[1] * w + b;
    let xa = n.x;
    var prev = n.y;
    if first {
        prev = old;
        st[si] = n.z;
    }
    let o = t * C + c;
    if p.mode == 2u {
        act[p.out[0].x + o] = xa;
        act[p.out[0].y + o] = prev - xa;
        act[p.out[0].z + o] = xa + (prev - xa) * m[0];
        return;
    }
    for (var f = 0u; f < 8u; f++) {
        if f < p.nmix {
            var y = xa + (prev - xa) * m[f];
            if p.mode == 1u {
                y = xa * m[f] + prev * (1.0 - m[f]);
            }
            act[p.out[f >> 2u][f & 3u] + o] = y;
        }
    }
}
