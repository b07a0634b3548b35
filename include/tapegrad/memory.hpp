// tapegrad/memory.hpp — how the process's allocator is set up for training.
#pragma once

namespace tg {

/// Tells glibc to keep freed memory for reuse instead of returning it to the system. A
/// training step frees and reallocates the same large arrays (activations, gradients) every
/// step; by default glibc serves big blocks with mmap and gives them back when freed, so the
/// next step pays a page fault for every 4 KiB page again (measured: ~20,000 faults and ~45 ms
/// of a ~95 ms step at batch 512). The process keeps its peak memory instead. Call it once
/// before the first training step (ch310_train_cnn and ch310_bn_histograms do, right after
/// parsing their flags; bench_tapegrad too); later calls do nothing.
void tune_allocator_for_training();

}  // namespace tg
