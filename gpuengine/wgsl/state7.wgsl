// A row of RWKV-7's state in registers (timemix7.wgsl, recur7.wgsl). A
// head's S (N×N, [value i][key j]) is stored by columns, S[i][j] at
// hb + j·N + i from the head's base hb in the bound states, so that the
// threads of a head, each holding a row, read and write adjacent floats
// (rows stored whole were read 4·N bytes apart, which at one token per
// segment made the time mix of a batch a quarter of its step). v7.go turns
// the states' host layout, row after row, into this one and back.
// Quads are held by constant indices only (a private array indexed by a
// variable lives in local memory); those past N4 are removed by the
// compiler. N is a multiple of 16 up to 64.

const N4: u32 = N / 4u;

// ld4 reads S[i][j…j+3].
fn ld4(hb: u32, i: u32, j: u32) -> vec4<f32> {
    return vec4<f32>(st[hb + j * N + i], st[hb + (j + 1u) * N + i], st[hb + (j + 2u) * N + i], st[hb + (j + 3u) * N + i]);
}

// st4 writes S[i][j…j+3].
fn st4(hb: u32, i: u32, j: u32, v: vec4<f32>) {
    st[hb + j * N + i] = v.x;
    st[hb + (j + 1u) * N + i] = v.y;
    st[hb + (j + 2u) * N + i] = v.z;
    st[hb + (j + 3u) * N + i] = v.w;
}

fn load_row(hb: u32, i: u32) -> array<vec4<f32>, 16> {
    var S: array<vec4<f32>, 16>;
    S[0] = ld4(hb, i, 0u);
    S[1] = ld4(hb, i, 4u);
    S[2] = ld4(hb, i, 8u);
    S[3] = ld4(hb, i, 12u);
    if N4 > 4u {
        S[4] = ld4(hb, i, 16u);
        S[5] = ld4(hb, i, 20u);
        S[6] = ld4(hb, i, 24u);
        S[7] = ld4(hb, i, 28u);
    }
    if N4 > 8u {
        S[8] = ld4(hb, i, 32u);
        S[9] = ld4(hb, i, 36u);
        S[10] = ld4(hb, i, 40u);
        S[11] = ld4(hb, i, 44u);
    }
    if N4 > 12u {
        S[12] = ld4(hb, i, 48u);
        S[13] = ld4(hb, i, 52u);
        S[14] = ld4(hb, i, 56u);
        S[15] = ld4(hb, i, 60u);
    }
    return S;
}

fn store_row(hb: u32, i: u32, S: array<vec4<f32>, 16>) {
    st4(hb, i, 0u, S[0]);
    st4(hb, i, 4u, S[1]);
    st4(hb, i, 8u, S[2]);
    st4(hb, i, 12u, S[3]);
    if N4 > 4u {
        st4(hb, i, 16u, S[4]);
        st4(hb, i, 20u, S[5]);
        st4(hb, i, 24u, S[6]);
        st4(hb, i, 28u, S[7]);
    }
    if N4 > 8u {
        st4(hb, i, 32u, S[8]);
        st4(hb, i, 36u, S[9]);
        st4(hb, i, 40u, S[10]);
        st4(hb, i, 44u, S[11]);
    }
    if N4 > 12u {
        st4(hb, i, 48u, S[12]);
        st4(hb, i, 52u, S[13]);
        st4(hb, i, 56u, S[14]);
        st4(hb, i, 60u, S[15]);
    }
}

// load_part reads S[i][j0…j0 + 4·Q), Q = N/16: a quarter of row i.
fn load_part(hb: u32, i: u32, j0: u32) -> array<vec4<f32>, 4> {
    var S: array<vec4<f32>, 4>;
    S[0] = ld4(hb, i, j0);
    if N4 > 4u {
        S[1] = ld4(hb, i, j0 + 4u);
    }
    if N4 > 8u {
        S[2] = ld4(hb, i, j0 + 8u);
    }
    if N4 > 12u {
        S[3] = ld4(hb, i, j0 + 12u);
    }
    return S;
}

fn store_part(hb: u32, i: u32, j0: u32, S: array<vec4<f32>, 4>) {
    st4(hb, i, j0, S[0]);
    if N4 > 4u {
        st4(hb, i, j0 + 4u, S[1]);
    }
    if N4 > 8u {
        st4(hb, i, j0 + 8u, S[2]);
    }
    if N4 > 12u {
        st4(hb, i, j0 + 12u, S[3]);
    }
}
