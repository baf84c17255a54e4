// The step templates' staging of their source tile (kernels/step/generate.rs includes it in
// the step kernels, not the sequence kernels, which have no tiles).

// Stages the K_TILE-wide slice at k0 of the source rows of this workgroup's batch tile in
// src_tile, whole vec4s of 4 rows at one k (invocations never write parts of one vector):
// src_tile[kk · BATCH_TILE/4 + r/4][r % 4] = src[row r][k0 + kk]. Each template defines
// src_tile and load_src.
fn stage_source(li: u32, batch0: u32, k0: u32, t_src: u32, has_src: bool) {
    // @unroll
    for (var i = 0u; i < SRC_STAGE_ITERS; i++) {
        let e = li + i * THREADS;
        if (e < BATCH_TILE / 4u * K_TILE) {
            let kk = e % K_TILE;
            let r0 = batch0 + (e / K_TILE) * 4u;
            src_tile[kk * (BATCH_TILE / 4u) + e / K_TILE] = vec4<f32>(
                load_src(t_src, has_src, r0, k0 + kk),
                load_src(t_src, has_src, r0 + 1u, k0 + kk),
                load_src(t_src, has_src, r0 + 2u, k0 + kk),
                load_src(t_src, has_src, r0 + 3u, k0 + kk),
            );
        }
    }
}
