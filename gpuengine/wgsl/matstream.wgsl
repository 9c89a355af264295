// ---- matstream, matfix: the jobs of linear.wgsl in an even share of their
// slices a workgroup (compiled after matmat.wgsl).
//
// A dispatch of fewer tiles than the GPU holds workgroups at once leaves
// multiprocessors idle however its tiles are cut: its time is that of the
// multiprocessors holding the most tiles. Here the units of work are a
// tile's slices (BK columns), numbered tile after tile (tiles job after job,
// row tiles of a job in order, its token tiles within each), and workgroup w
// of W (lin.streams) sums units [w·U/W, (w+1)·U/W). The units a workgroup
// sums of a tile are a segment: a segment of a whole tile is finished at
// once; one of part of a tile is stored as partial sums (piece 0 where it
// is the workgroup's first segment, 1 where it is its last), which matfix
// adds up, in the order of the workgroups, and finishes. This is the
// "Stream-K" decomposition (Osama, Merrill, Cecka, Garland, Owens: Stream-K:
// Work-centric Parallel Decomposition for Dense Matrix-Matrix Multiplication
// on the GPU, 2023).
//
// Partial sums of workgroup w, piece p, token t and row r of a tile lie at
// lin.scratch + ((2w + p)·BN + t)·BM + r.

// A stream tile: its job, first row and token, first unit and units.
struct Tile {
    job: u32,
    row: u32,
    tok: u32,
    u0: u32,
    n: u32,
}

// stream_tile is the tile that holds unit x (numbered false) or the tile
// numbered x (numbered true) of a dispatch over tt token tiles; its job is
// MAXJOBS past the last, with u0 the units of all the tiles.
fn stream_tile(x: u32, numbered: bool, tt: u32) -> Tile {
    var u = 0u;
    var t = 0u;
    for (var j = 0u; j < lin.n; j++) {
        let s = lin.jobs[j].cols / BK;
        let nt = (lin.jobs[j].rows + BM - 1u) / BM * tt;
        let i = select((x - u) / s, x - t, numbered);
        if select(x < u + nt * s, x < t + nt, numbered) {
            return Tile(j, i / tt * BM, i % tt * BN, u + i * s, s);
        }
        u += nt * s;
        t += nt;
    }
    return Tile(MAXJOBS, 0u, 0u, u, 0u);
}

// stream_start is the first unit of workgroup w of a dispatch of units u
// (the host keeps w·u within 32 bits).
fn stream_start(w: u32, u: u32) -> u32 { return w * u / lin.streams; }

@compute @workgroup_size(NT)
fn matstream(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let count = job_count(lin.jobs[0]);
    let tt = (count + BN - 1u) / BN;
    let units = stream_tile(0xffffffffu, false, tt).u0;
    let w = wid.x;
    let start = stream_start(w, units);
    let end = stream_start(w + 1u, units);
    var u = start;
    while u < end {
        let tl = stream_tile(u, false, tt);
        let stop = min(end, tl.u0 + tl.n);
        var o = Out(false, 0u, 0u);
        if u > tl.u0 || stop < tl.u0 + tl.n {
            let piece = select(1u, 0u, u == start);
            o = Out(true, lin.scratch + (2u * w + piece) * BN * BM - tl.tok * BM - tl.row, BM);
        }
        tile_sums(lin.jobs[tl.job], tl.row, tl.tok, count, u - tl.u0, stop - u, o, lid);
        u = stop;
    }
}

// matfix adds up the pieces of tile wid.x of a stream dispatch, if it was
// cut, and finishes them: workgroup row y the tile's quads 256y… (of rows,
// token after token), consecutive quads to consecutive threads. A thread's
// loads of the pieces follow one another, so the sum wants many threads in
// flight, not one workgroup a tile whose threads each add up 16 quads.
@compute @workgroup_size(256)
fn matfix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let count = job_count(lin.jobs[0]);
    let tt = (count + BN - 1u) / BN;
    let units = stream_tile(0xffffffffu, false, tt).u0;
    let tl = stream_tile(wid.x, true, tt);
    let e = wid.y * 256u + lid;
    let t = e / (BM / 4u);
    let r = (e % (BM / 4u)) * 4u;
    if tl.job >= lin.n || tl.tok + t >= count {
        return;
    }
    let a = tl.u0;
    let b = a + tl.n;
    // w0 is the workgroup whose units hold a: the last to start at or
    // before it.
    var w0 = a * lin.streams / units;
    while w0 + 1u < lin.streams && stream_start(w0 + 1u, units) <= a {
        w0++;
    }
    while w0 > 0u && stream_start(w0, units) > a {
        w0--;
    }
    if stream_start(w0 + 1u, units) >= b {
        return; // one workgroup summed it whole and finished it
    }
    let j = lin.jobs[tl.job];
    if tl.row + r >= j.rows {
        return;
    }
    var v = vec4<f32>(0.0);
    for (var w = w0; w < lin.streams && stream_start(w, units) < b; w++) {
        let s = stream_start(w, units);
        if stream_start(w + 1u, units) > s {
            let piece = select(1u, 0u, s >= a);
            v += act[(lin.scratch + ((2u * w + piece) * BN + t) * BM + r) / 4u];
        }
    }
    finish(j, v, tl.tok + t, tl.row + r);
}
