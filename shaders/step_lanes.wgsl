// The sum of v over the K_SPLIT lanes that share a unit and batch rows (the lanes are the
// fastest part of the invocation index), valid in lane 0. The split tilings (GPUs) spread each
// dot product over K_SPLIT invocations, to shorten a step's serial chain and fill the device.
// Contains barriers: call it in uniform control flow. Included only where K_SPLIT > 1.
var<workgroup> lane_sums: array<vec4<f32>, THREADS>;

fn sum_lanes(li: u32, v: vec4<f32>) -> vec4<f32> {
    lane_sums[li] = v;
    workgroupBarrier();
    // @unroll
    for (var level = 0u; level < LANE_LEVELS; level++) {
        let half = K_SPLIT >> (level + 1u);
        if (li % K_SPLIT < half) {
            lane_sums[li] += lane_sums[li + half];
        }
        workgroupBarrier();
    }
    return lane_sums[li];
}
