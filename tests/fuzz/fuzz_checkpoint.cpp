// libFuzzer target: resuming training from any checkpoint file, which loads the model's
// weights, the optimizer's state, the noise generator, the loader position and the pinned
// options from it (tools::train_vae, as `train_vae --resume` does), on a tiny checked-in
// dataset (tests/fuzz/data: 4x4 images). The tool turns any std::exception into exit code 1
// (TrainingDiverged into 3), so those are clean outcomes; a crash, a sanitizer report or a
// huge allocation is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>

#include "fuzz_input.hpp"
#include "tools/vae_training.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The run reports each epoch on stdout; the fuzzer's own report is on stderr.
  if (std::freopen("/dev/null", "w", stdout) == nullptr) __builtin_trap();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tools::TrainOptions o;
  o.data.data = FUZZ_DATA_DIR;
  o.resume = fuzz::write_input("checkpoint.safetensors", data, size);
  o.out = fuzz::work_dir() / "out";
  o.epochs = 2;  // the seeds stop after epoch 1: resuming trains one more epoch
  o.threads = 1;
  o.progress = false;
  try {
    tools::train_vae(o);
  } catch (const std::exception&) {
  }
  return 0;
}
