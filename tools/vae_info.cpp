// vae info CKPT: what a model file holds: its configuration, its tensors, how long it was
// trained and its last figures.
#include <algorithm>
#include <memory>

#include <fmt/format.h>

#include "nn/safetensors.hpp"
#include "nn/state_dict.hpp"
#include "tools/command.hpp"

namespace tools {

Command add_info_command(CLI::App& vae) {
  auto model = std::make_shared<std::string>();
  CLI::App* app = vae.add_subcommand("info", "configuration, parameters per tensor, epochs and last metrics");
  add_model_argument(*app, *model);
  add_config_flag(*app);
  return {app, [model] {
            LoadedModel m = load_model(*model);
            fmt::print("{}\n", m.model->describe());
            if (m.model->conditional())
              fmt::print("conditional on {} classes (vae sample --label K draws class K)\n", m.model->num_classes());
            const auto get = [&](const char* key) {
              auto it = m.metadata.find(key);
              return it == m.metadata.end() ? std::string("?") : it->second;
            };
            fmt::print("format: {}\nexample shape: {}\nepochs: {}\n{} loss: {}\n", get("format"),
                       layout_text(m.example), get("epochs"), get("evaluated_on"), get("test_loss"));
            if (!m.label_names.empty()) fmt::print("classes: {}\n", fmt::join(m.label_names, ", "));
            for (const auto& [key, value] : m.metadata)
              if (key.rfind("option.", 0) == 0) fmt::print("  --{} {}\n", key.substr(7), value);
            if (auto it = m.metadata.find("state.metrics"); it != m.metadata.end() && !it->second.empty()) {
              const std::string& text = it->second;
              const auto end = text.find_last_not_of('\n');
              const auto start = text.rfind('\n', end);
              const std::size_t first = start == std::string::npos ? 0 : start + 1;
              const std::string row = text.substr(first, end - first + 1);
              const bool has_lr = std::count(row.begin(), row.end(), ',') >= 7;  // (older checkpoints have none)
              fmt::print("last epoch (epoch,train_loss,test_loss,recon,kl,seconds,beta{}): {}\n", has_lr ? ",lr" : "",
                         row);
            }
            std::size_t total = 0;
            for (const nn::StateEntry& e : m.model->module().state_dict()) {
              fmt::print("  {:<22} {:<12} {:>9} parameters\n", e.name, nn::to_string(e.shape), e.array->size());
              total += e.array->size();
            }
            fmt::print("parameters: {}\n", total);
          }};
}

}  // namespace tools
