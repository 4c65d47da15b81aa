// Saving and loading a module's state as a safetensors file, in PyTorch's names and layouts
// ("encoder.0.weight" [out, in], "encoder.0.bias" [out]), so that
//   model.load_state_dict(safetensors.torch.load_file(path))
// works on the equivalent PyTorch module.
//
//   nn::save_module("model.safetensors", vae, {{"latent", "20"}});
//   nn::SafetensorsFile file = nn::SafetensorsFile::load("model.safetensors");
//   nn::load_module(file, vae);   // throws StateDictError naming a missing or mis-shaped tensor
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "nn/module.hpp"
#include "nn/safetensors.hpp"

namespace nn {

/// The module's state dict as entries to write (they point into the module's arrays).
std::vector<TensorEntry> module_entries(Module& module);

/// Writes the module's state, `extra` entries after it (e.g. optimizer state), and the
/// metadata, atomically (the previous file survives any failure).
void save_module(const std::filesystem::path& path, Module& module, const Metadata& metadata,
                 std::span<const TensorEntry> extra = {});

/// Throws SafetensorsError naming the tensor of `file` and the index of the first NaN or
/// infinite one of its `values`.
void check_finite(const SafetensorsFile& file, const std::string& name, std::span<const float> values);

/// Every tensor of `file` (weights and optimizer state alike) finite, or a SafetensorsError:
/// a resumed run checks this before it creates anything.
void check_all_finite(const SafetensorsFile& file);

/// Loads every tensor of the module's state dict from `file`; tensors whose names start
/// with one of `ignore_prefixes` are skipped, any other tensor the module lacks is an error
/// (StateDictError), and so is a NaN or infinite value (SafetensorsError naming the tensor
/// and the index). The module is left as it was on any error.
void load_module(const SafetensorsFile& file, Module& module,
                 const std::vector<std::string>& ignore_prefixes = {});

}  // namespace nn
