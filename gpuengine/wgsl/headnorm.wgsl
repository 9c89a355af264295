// head_norm is RWKV-5…7's GroupNorm of one head (ln_x before its weight
// and bias, docs/rwkv-math.md) for the thread whose value is y: the
// including kernel has put the head's N values in its workgroup array
// sh_y (array<f32, N>) and passed a barrier since. Sums in channel order,
// as the CPU engine's.
fn head_norm(y: f32) -> f32 {
    var mean = 0.0;
    for (var j = 0u; j < N; j++) {
        mean += sh_y[j];
    }
    mean /= f32(N);
    var vr = 0.0;
    for (var j = 0u; j < N; j++) {
        let d = sh_y[j] - mean;
        vr += d * d;
    }
    return (y - mean) / sqrt(vr / f32(N) + 64e-5);
}
