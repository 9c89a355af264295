// A row of RWKV-7's state in registers (timemix7.wgsl, recur7.wgsl): row i
// of a head's S, N floats from base in the bound states, as N/4 quads by
// constant indices only (a private array indexed by a variable lives in
// local memory). The quads are written out, those past N4 removed by the
// compiler; N is a multiple of 16 up to 64.

const N4: u32 = N / 4u;

fn ld4(i: u32) -> vec4<f32> { return vec4<f32>(st[i], st[i + 1u], st[i + 2u], st[i + 3u]); }

fn st4(i: u32, v: vec4<f32>) {
    st[i] = v.x;
    st[i + 1u] = v.y;
    st[i + 2u] = v.z;
    st[i + 3u] = v.w;
}

fn load_row(base: u32) -> array<vec4<f32>, 16> {
    var S: array<vec4<f32>, 16>;
    S[0] = ld4(base + 0u);
    S[1] = ld4(base + 4u);
    S[2] = ld4(base + 8u);
    S[3] = ld4(base + 12u);
    if N4 > 4u {
        S[4] = ld4(base + 16u);
        S[5] = ld4(base + 20u);
        S[6] = ld4(base + 24u);
        S[7] = ld4(base + 28u);
    }
    if N4 > 8u {
        S[8] = ld4(base + 32u);
        S[9] = ld4(base + 36u);
        S[10] = ld4(base + 40u);
        S[11] = ld4(base + 44u);
    }
    if N4 > 12u {
        S[12] = ld4(base + 48u);
        S[13] = ld4(base + 52u);
        S[14] = ld4(base + 56u);
        S[15] = ld4(base + 60u);
    }
    return S;
}

fn store_row(base: u32, S: array<vec4<f32>, 16>) {
    st4(base + 0u, S[0]);
    st4(base + 4u, S[1]);
    st4(base + 8u, S[2]);
    st4(base + 12u, S[3]);
    if N4 > 4u {
        st4(base + 16u, S[4]);
        st4(base + 20u, S[5]);
        st4(base + 24u, S[6]);
        st4(base + 28u, S[7]);
    }
    if N4 > 8u {
        st4(base + 32u, S[8]);
        st4(base + 36u, S[9]);
        st4(base + 40u, S[10]);
        st4(base + 44u, S[11]);
    }
    if N4 > 12u {
        st4(base + 48u, S[12]);
        st4(base + 52u, S[13]);
        st4(base + 56u, S[14]);
        st4(base + 60u, S[15]);
    }
}
