// Declarations every kernel shares. The host prepends the constants: C
// (the embedding) and each kernel's own.
//
// Bindings, the same in every kernel that has them: 0 the kernel's
// parameters (uniform), 1 the pass description, 2 a weight arena, 3 the
// activations, 4 the states of one layer.
//
// The pass description (u32 words): [0] tokens T, [1] segments S,
// [2] output rows R, [3] the capacity M (tokens of a pass); from 4 the
// token ids; from 4 + M each token's segment; from 4 + 2M per segment its
// state slot, first token, length and first span (4 words); from 4 + 6M
// each output row's token; from 4 + 7M, for a pass of long segments, the
// spans of RWKV-7's recurrence (recur7.wgsl; up to M/2, 4 words each): the
// span's segment, first token, end and scratch slot (NO_SCRATCH for the one
// span of a segment). A segment is the run of one sequence's tokens in this
// pass, in order; its spans are consecutive runs of its tokens, in order,
// whose scratch slots are consecutive too. The head works on a chunk of the pass's output rows at a time:
// R and the rows' tokens are those of the chunk, each chunk's written over
// the last's.

@group(0) @binding(1) var<storage, read> info: array<u32>;

fn n_tokens() -> u32 { return info[0]; }
fn n_segments() -> u32 { return info[1]; }
fn n_rows() -> u32 { return info[2]; }
fn token_id(t: u32) -> u32 { return info[4u + t]; }
fn token_seg(t: u32) -> u32 { return info[4u + info[3] + t]; }
fn seg_slot(s: u32) -> u32 { return info[4u + 2u * info[3] + 4u * s]; }
fn seg_start(s: u32) -> u32 { return info[4u + 2u * info[3] + 4u * s + 1u]; }
fn seg_len(s: u32) -> u32 { return info[4u + 2u * info[3] + 4u * s + 2u]; }
fn seg_span0(s: u32) -> u32 { return info[4u + 2u * info[3] + 4u * s + 3u]; }
fn out_token(r: u32) -> u32 { return info[4u + 6u * info[3] + r]; }
fn span_word(k: u32, w: u32) -> u32 { return info[4u + 7u * info[3] + 4u * k + w]; }

const NO_SCRATCH: u32 = 0xffffffffu;

// A Segment is what a kernel run per segment (and head) needs of segment
// s: its tokens [start, end) and its state slot in the page of states
// bound, slots slot0 … slot0 + nslots − 1. ok is false for a workgroup past
// the pass's segments or whose segment's state is in another page: it has
// nothing to do.
struct Segment {
    start: u32,
    end: u32,
    slot: u32,
    ok: bool,
}

fn segment(s: u32, slot0: u32, nslots: u32) -> Segment {
    var g: Segment;
    if s >= n_segments() {
        return g;
    }
    g.start = seg_start(s);
    g.end = g.start + seg_len(s);
    g.slot = seg_slot(s) - slot0;
    g.ok = g.slot < nslots;
    return g;
}

// A Span is a segment's (see segment) for span k: its tokens
// [start, end), its scratch slot, and whether it is the segment's last.
struct Span {
    start: u32,
    end: u32,
    slot: u32,
    scratch: u32,
    last: bool,
    ok: bool,
}

fn span(k: u32, slot0: u32, nslots: u32) -> Span {
    var g: Span;
    let sg = segment(span_word(k, 0u), slot0, nslots);
    g.start = span_word(k, 1u);
    g.end = span_word(k, 2u);
    g.scratch = span_word(k, 3u);
    g.slot = sg.slot;
    g.last = g.end == sg.end;
    g.ok = sg.ok;
    return g;
}

// The linear index of a workgroup of a grid laid out in two dimensions.
fn wg_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.x + wid.y * nwg.x; }

fn sigmoid(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }

// tanh from one exponential of a non-positive number: the builtin may be
// computed as a quotient of exponentials that overflows to NaN.
fn tanh_(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    return sign(x) * (1.0 - e) / (1.0 + e);
}
