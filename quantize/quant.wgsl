// Int8 and NF4 block quantization of float16 data (packed two per u32).
// The arithmetic is the package's definition (doc.go); every float
// operation is a float32 add, subtract or multiply, never a multiply whose
// result is added to, so FMA contraction cannot change a result.
//
// Each thread owns a contiguous run of one block and reads it as vec4<u32>
// (eight values): Int8 8 threads × 16 values per block, 32 blocks per
// workgroup; NF4 2 threads × 32 values per block, 128 blocks per workgroup.
// A kernel runs in three steps:
//  1. every thread reduces its values (min/max keys, or absmax);
//  2. one thread per block combines the partial results and derives the
//     block's parameters once (Int8: min and 255/R by long division;
//     NF4: the 15 thresholds, turned into float16 keys);
//  3. every thread encodes its values (NF4: comparing keys with the
//     thresholds, by binary search) and writes them as one vec4<u32>.
// The workgroup's linear index is wid.x + wid.y * nwg.x (the host lays large
// dispatches out in 2-D).

@group(0) @binding(0) var<storage, read> info: array<u32>;                // [0]: element count n
@group(0) @binding(1) var<storage, read> input: array<vec4<u32>>;         // float16, 8 per vec4
@group(0) @binding(2) var<storage, read_write> codes: array<vec4<u32>>;   // packed codes
@group(0) @binding(3) var<storage, read_write> params: array<u32>;        // float16 block parameters
@group(0) @binding(4) var<storage, read_write> status: atomic<u32>;       // 0, or ~(first non-finite index)
@group(0) @binding(5) var<storage, read> mids: array<f32>;                // NF4 midpoints (15)

// Step 1 results, one i32 per thread (Int8 minima in [0, 64), maxima in
// [64, 128); NF4 absmax in [0, 64)).
var<workgroup> part: array<vec4<i32>, 128>;
// Step 2 results: Int8 (min, 255/R) per block.
var<workgroup> i8par: array<vec2<f32>, 32>;
// Step 2 results: NF4 thresholds as keys, 16 per block (the last unused),
// padded to 5 vec4 so that the blocks read by one warp use distinct banks.
var<workgroup> nfkey: array<vec4<i32>, 640>;

// f16_to_f32 widens float16 bits (the low 16 bits of h) exactly, without
// the hardware's half-float conversion or denormal handling: a normal value
// by moving its fields, a subnormal one as its integer significand times
// 2⁻²⁴ (an exact product, whatever may fuse with it). ±0 keeps its sign,
// which no result depends on.
fn f16_to_f32(h: u32) -> f32 {
    let a = h & 0x7FFFu;
    let nrm = bitcast<f32>((a << 13u) + 0x38000000u);
    let sub = f32(a) * 0x1p-24f;
    let mag = select(nrm, sub, a < 0x400u);
    return bitcast<f32>(bitcast<u32>(mag) | ((h & 0x8000u) << 16u));
}

// key orders float16 bits (the low 16 bits of h) like their values (±0 → 0).
// Finite keys lie in (−0x7C00, 0x7C00).
fn key(h: u32) -> i32 {
    let m = i32(h & 0x7FFFu);
    return select(m, -m, (h & 0x8000u) != 0u);
}

fn unkey(k: i32) -> u32 {
    return select(u32(k), 0x8000u | u32(-k), k < 0);
}

fn non_finite(h: u32) -> bool {
    return (h & 0x7C00u) == 0x7C00u;
}

// div_rn returns n/d rounded to nearest even, for positive normal n and d
// with a normal quotient, by integer long division of the significands:
// float division in shaders is only accurate to 2.5 ulp.
fn div_rn(n: f32, d: f32) -> f32 {
    let nb = bitcast<u32>(n);
    let db = bitcast<u32>(d);
    var mn = (nb & 0x7FFFFFu) | 0x800000u;
    let md = (db & 0x7FFFFFu) | 0x800000u;
    var e = i32(nb >> 23u) - i32(db >> 23u) + 127;
    if mn < md {
        mn = mn << 1u;
        e = e - 1;
    }
    var q = 1u;
    var r = mn - md;
    for (var i = 0u; i < 23u; i++) {
        r = r << 1u;
        q = q << 1u;
        if r >= md {
            r = r - md;
            q = q | 1u;
        }
    }
    let r2 = r << 1u;
    if r2 > md || (r2 == md && (q & 1u) == 1u) {
        q = q + 1u;
    }
    if q == 0x1000000u {
        q = 0x800000u;
        e = e + 1;
    }
    return bitcast<f32>((u32(e) << 23u) | (q & 0x7FFFFFu));
}

// flag records element i as non-finite; the smallest index wins.
fn flag(i: u32) {
    atomicMax(&status, ~i);
}

// half returns value i (0…7) of a vec4 of packed float16.
fn half(w: vec4<u32>, i: u32) -> u32 {
    return (w[i >> 1u] >> (16u * (i & 1u))) & 0xFFFFu;
}

// keep returns w with its values from index cnt on replaced by fill: the
// values past the end of the data in the last block.
fn keep(w: vec4<u32>, cnt: i32, fill: u32) -> vec4<u32> {
    var out: vec4<u32>;
    for (var c = 0; c < 4; c++) {
        let lo = select(fill, w[c] & 0xFFFFu, 2 * c < cnt);
        let hi = select(fill, w[c] >> 16u, 2 * c + 1 < cnt);
        out[c] = lo | (hi << 16u);
    }
    return out;
}

// report flags the first non-finite value among the cnt values of w
// starting at element e.
fn report(w: vec4<u32>, e: u32, cnt: i32) {
    for (var i = 0; i < min(cnt, 8); i++) {
        if non_finite(half(w, u32(i))) {
            flag(e + u32(i));
            return;
        }
    }
}

// ---- Int8, blocks of 128 ----

// minmax folds the keys of the eight values of w into acc = (min, max).
fn minmax(w: vec4<u32>, acc: vec2<i32>) -> vec2<i32> {
    var r = acc;
    for (var c = 0; c < 4; c++) {
        let k0 = key(w[c] & 0xFFFFu);
        let k1 = key(w[c] >> 16u);
        r = vec2<i32>(min(r.x, min(k0, k1)), max(r.y, max(k0, k1)));
    }
    return r;
}

// code8 quantizes one float16 value: roundHalfEven((v − mn)·s), taken from
// the low mantissa bits of round(t) + 2²³ (exact, since 0 ≤ round(t) ≤ 255).
// round() comes between the product and the addition, so they cannot fuse.
fn code8(h: u32, mn: f32, s: f32) -> u32 {
    let t = (f16_to_f32(h) - mn) * s;
    return bitcast<u32>(round(t) + 8388608.0) & 0xFFu;
}

// codes4 quantizes the four values of two packed words into one word.
fn codes4(a: u32, b: u32, mn: f32, s: f32) -> u32 {
    return code8(a & 0xFFFFu, mn, s) | (code8(a >> 16u, mn, s) << 8u) |
        (code8(b & 0xFFFFu, mn, s) << 16u) | (code8(b >> 16u, mn, s) << 24u);
}

@compute @workgroup_size(256)
fn int8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let nb = (n + 127u) / 128u;
    let wg = wid.x + wid.y * nwg.x;
    let lb = lid / 8u;             // block within the workgroup
    let blk = wg * 32u + lb;
    let e0 = blk * 128u + (lid % 8u) * 16u; // first element of this thread
    let v0 = e0 / 8u;                  // its first vec4

    // Step 1.
    var w0 = vec4<u32>(0u);
    var w1 = vec4<u32>(0u);
    var acc = vec2<i32>(0x8000, -0x8000);
    if blk < nb {
        w0 = input[v0];
        w1 = input[v0 + 1u];
        let cnt = i32(min(n - min(e0, n), 16u));
        if cnt < 16 {
            // The last block: fill the missing values with its first one,
            // which changes neither its minimum nor its maximum.
            let first = input[blk * 16u].x & 0xFFFFu;
            w0 = keep(w0, cnt, first);
            w1 = keep(w1, cnt - 8, first);
        }
        acc = minmax(w1, minmax(w0, acc));
        if acc.x <= -0x7C00 || acc.y >= 0x7C00 {
            report(w0, e0, cnt);
            report(w1, e0 + 8u, cnt - 8);
        }
    }
    part[lid / 4u][lid % 4u] = acc.x;
    part[64u + lid / 4u][lid % 4u] = acc.y;
    workgroupBarrier();

    // Step 2: thread b < 32 finishes block b of the workgroup.
    if lid < 32u {
        let l0 = part[2u * lid];
        let l1 = part[2u * lid + 1u];
        let h0 = part[64u + 2u * lid];
        let h1 = part[64u + 2u * lid + 1u];
        let l = min(min(l0, l1), min(l0.yxwz, l1.yxwz));
        let h = max(max(h0, h1), max(h0.yxwz, h1.yxwz));
        let min_h = unkey(min(l.x, l.z));
        let max_h = unkey(max(h.x, h.z));
        let b = wg * 32u + lid;
        if b < nb {
            params[b] = min_h | (max_h << 16u);
        }
        let mn = f16_to_f32(min_h);
        let r = f16_to_f32(max_h) - mn;
        var s = 0.0;
        if r > 0.0 {
            s = div_rn(255.0, r);
        }
        i8par[lid] = vec2<f32>(mn, s);
    }
    workgroupBarrier();

    // Step 3.
    if blk < nb {
        let p = i8par[lb];
        codes[v0 / 2u] = vec4<u32>(codes4(w0.x, w0.y, p.x, p.y), codes4(w0.z, w0.w, p.x, p.y),
                                   codes4(w1.x, w1.y, p.x, p.y), codes4(w1.z, w1.w, p.x, p.y));
    }
}

// ---- NF4, blocks of 64 ----

// absmax folds the magnitudes of the eight values of w into m.
fn absmax(w: vec4<u32>, m: u32) -> u32 {
    let x = max(w & vec4<u32>(0x7FFFu), (w >> vec4<u32>(16u)) & vec4<u32>(0x7FFFu));
    return max(m, max(max(x.x, x.y), max(x.z, x.w)));
}

// floor16 and ceil16 give the float16 bits of the largest float16 ≤ x and
// of the smallest float16 ≥ x, for 0 ≤ x < 65520 that is 0 or at least
// 2⁻¹²⁶: on the float16 normal range by cutting float32 bits, below it by
// scaling to an integer (x·2²⁴ is exact there).
fn floor16(x: f32) -> i32 {
    let b = bitcast<u32>(x);
    return i32(select(u32(floor(x * 16777216.0)), (b - 0x38000000u) >> 13u, b >= 0x38800000u));
}

fn ceil16(x: f32) -> i32 {
    let b = bitcast<u32>(x);
    return i32(select(u32(ceil(x * 16777216.0)), (b - 0x38000000u + 0x1FFFu) >> 13u, b >= 0x38800000u));
}

// threshold turns v ≥ T (T = m·a, midpoint m's float32 threshold) into
// nkeys(v) ≥ K for float16 v. T > 0: v ≥ T exactly for the float16 ≥ the
// smallest one ≥ T (at least 1, so that no zero passes when a = 0). T ≤ 0:
// exactly for v ≥ 0 and the negative v with |v| ≤ the largest float16
// ≤ |T| = f, whose keys are ≥ −f−1.
fn threshold(m: f32, a: f32) -> i32 {
    let t = m * a;
    if m > 0.0 {
        return max(ceil16(t), 1);
    }
    return -floor16(abs(t)) - 1;
}

// nkeys orders four float16 values (bits sign-extended from 16 bits) like
// the values, with −0 just below +0: −a−1 for negative magnitude a.
fn nkeys(h: vec4<i32>) -> vec4<i32> {
    return h ^ ((h >> vec4<u32>(31u)) & vec4<i32>(0x7FFF));
}

// nf4code counts the thresholds k0…k14 (sorted; q0 = k0…k3, …,
// q3 = k12…k14) that key kv reaches, by binary search, and returns the
// count shifted left by s.
fn nf4code(kv: i32, q0: vec4<i32>, q1: vec4<i32>, q2: vec4<i32>, q3: vec4<i32>, s: u32) -> u32 {
    let b3 = kv >= q1.w; // k7
    let b2 = kv >= select(q0.w, q2.w, b3); // k3, k11
    let b1 = kv >= select(select(q0.y, q1.y, b2), select(q2.y, q3.y, b2), b3); // k1, k5, k9, k13
    let t0 = select(select(select(q0.x, q0.z, b1), select(q1.x, q1.z, b1), b2),
                    select(select(q2.x, q2.z, b1), select(q3.x, q3.z, b1), b2), b3); // k0, k2, …, k14
    let b0 = kv >= t0;
    return select(0u, 8u << s, b3) | select(0u, 4u << s, b2) | select(0u, 2u << s, b1) | select(0u, 1u << s, b0);
}

// nibbles encodes the eight values of w, value i in bits 4i…4i+3.
fn nibbles(w: vec4<u32>, q0: vec4<i32>, q1: vec4<i32>, q2: vec4<i32>, q3: vec4<i32>) -> u32 {
    let l = nkeys(bitcast<vec4<i32>>(w << vec4<u32>(16u)) >> vec4<u32>(16u)); // values 0, 2, 4, 6
    let h = nkeys(bitcast<vec4<i32>>(w) >> vec4<u32>(16u));                   // values 1, 3, 5, 7
    return nf4code(l.x, q0, q1, q2, q3, 0u) | nf4code(h.x, q0, q1, q2, q3, 4u) |
        nf4code(l.y, q0, q1, q2, q3, 8u) | nf4code(h.y, q0, q1, q2, q3, 12u) |
        nf4code(l.z, q0, q1, q2, q3, 16u) | nf4code(h.z, q0, q1, q2, q3, 20u) |
        nf4code(l.w, q0, q1, q2, q3, 24u) | nf4code(h.w, q0, q1, q2, q3, 28u);
}

@compute @workgroup_size(256)
fn nf4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let nb = (n + 63u) / 64u;
    let wg = wid.x + wid.y * nwg.x;
    let lb = lid / 2u;              // block within the workgroup
    let blk = wg * 128u + lb;
    let e0 = blk * 64u + (lid % 2u) * 32u; // first element of this thread
    let v0 = e0 / 8u;

    // Step 1. Values past the end become 0, which leaves absmax alone.
    var w: array<vec4<u32>, 4>;
    var m = 0u;
    let cnt = i32(min(n - min(e0, n), 32u));
    if blk < nb {
        for (var i = 0u; i < 4u; i++) {
            w[i] = input[v0 + i];
        }
        if cnt < 32 {
            for (var i = 0; i < 4; i++) {
                w[i] = keep(w[i], cnt - 8 * i, 0u);
            }
        }
        for (var i = 0u; i < 4u; i++) {
            m = absmax(w[i], m);
        }
        if m >= 0x7C00u {
            for (var i = 0; i < 4; i++) {
                report(w[i], e0 + 8u * u32(i), cnt - 8 * i);
            }
        }
    }
    part[lid / 4u][lid % 4u] = i32(m);
    workgroupBarrier();

    // Step 2: thread b < 128 finishes block b of the workgroup; thread
    // p < 64 writes the parameter word of blocks 2p and 2p+1 (a missing odd
    // block's absmax is 0).
    if lid < 128u {
        let pq = part[lid / 2u];
        let pair = max(pq.xz, pq.yw); // absmax of blocks 2⌊lid/2⌋, 2⌊lid/2⌋+1
        let a_h = u32(select(pair.x, pair.y, (lid & 1u) == 1u));
        if lid < 64u {
            let q = part[lid];
            let pw = wg * 64u + lid;
            if 2u * pw < nb {
                params[pw] = u32(max(q.x, q.y)) | (u32(max(q.z, q.w)) << 16u);
            }
        }
        let a = f16_to_f32(a_h);
        var k: array<i32, 16>;
        for (var i = 0u; i < 15u; i++) {
            k[i] = threshold(mids[i], a);
        }
        k[15] = 0;
        for (var i = 0u; i < 4u; i++) {
            nfkey[lid * 5u + i] = vec4<i32>(k[4u * i], k[4u * i + 1u], k[4u * i + 2u], k[4u * i + 3u]);
        }
    }
    workgroupBarrier();

    // Step 3. Nibbles past the end are 0.
    if blk < nb {
        let q0 = nfkey[lb * 5u];
        let q1 = nfkey[lb * 5u + 1u];
        let q2 = nfkey[lb * 5u + 2u];
        let q3 = nfkey[lb * 5u + 3u];
        var out: vec4<u32>;
        for (var i = 0; i < 4; i++) {
            let c = clamp(cnt - 8 * i, 0, 8);
            let mask = select(0xFFFFFFFFu, (1u << (4u * u32(c))) - 1u, c < 8);
            out[i] = nibbles(w[i], q0, q1, q2, q3) & mask;
        }
        codes[v0 / 4u] = out;
    }
}
