#include "tools/model.hpp"

#include <cmath>

#include <stdexcept>

#include <fmt/format.h>

#include "models/conditional_vae_file.hpp"
#include "models/vae_file.hpp"
#include "tools/options.hpp"

namespace tools {
namespace {

class PlainModel final : public Model {
 public:
  explicit PlainModel(std::unique_ptr<models::Vae> vae) : vae_(std::move(vae)) {}
  nn::Module& module() override { return *vae_; }
  const models::VaeConfig& config() const override { return vae_->config(); }
  std::size_t num_classes() const override { return 0; }
  nn::Metadata metadata() const override { return vae_->config().to_metadata(); }
  models::Vae::Posterior encode(ag::Var x, ag::Var) override { return vae_->encode(x); }
  models::Vae::Likelihood decode(ag::Var z, ag::Var) override { return vae_->decode(z); }
  ag::Var reconstruction_loss(const models::Vae::Likelihood& p, ag::Var x, ag::Reduction r) override {
    return vae_->reconstruction_loss(p, x, r);
  }
  ag::Var expected_x(const models::Vae::Likelihood& p) override { return vae_->expected_x(p); }
  models::VaeLoss loss(ag::Var x, ag::Var, ag::Rng& noise, float beta) override { return vae_->loss(x, noise, beta); }
  models::VaeLoss loss(ag::Var x, ag::Var, const ag::Array& eps, float beta) override {
    return vae_->loss(x, eps, beta);
  }

 private:
  std::vector<double> bound(ag::Tape& tape, const ag::Array& x, const ag::Array&, std::size_t k,
                            ag::Rng& rng) override {
    return vae_->importance_weighted_bound(tape, x, k, rng);
  }

  std::unique_ptr<models::Vae> vae_;
};

class ConditionalModel final : public Model {
 public:
  explicit ConditionalModel(std::unique_ptr<models::ConditionalVae> cvae) : cvae_(std::move(cvae)) {}
  nn::Module& module() override { return *cvae_; }
  const models::VaeConfig& config() const override { return cvae_->config(); }
  std::size_t num_classes() const override { return cvae_->num_classes(); }
  nn::Metadata metadata() const override { return models::conditional_metadata(*cvae_); }
  models::Vae::Posterior encode(ag::Var x, ag::Var labels) override { return cvae_->encode(x, labels); }
  models::Vae::Likelihood decode(ag::Var z, ag::Var labels) override { return cvae_->decode(z, labels); }
  ag::Var reconstruction_loss(const models::Vae::Likelihood& p, ag::Var x, ag::Reduction r) override {
    return cvae_->reconstruction_loss(p, x, r);
  }
  ag::Var expected_x(const models::Vae::Likelihood& p) override { return cvae_->expected_x(p); }
  models::VaeLoss loss(ag::Var x, ag::Var labels, ag::Rng& noise, float beta) override {
    return cvae_->loss(x, labels, noise, beta);
  }
  models::VaeLoss loss(ag::Var x, ag::Var labels, const ag::Array& eps, float beta) override {
    return cvae_->loss(x, labels, eps, beta);
  }

 private:
  std::vector<double> bound(ag::Tape& tape, const ag::Array& x, const ag::Array& classes, std::size_t k,
                            ag::Rng& rng) override {
    return cvae_->importance_weighted_bound(tape, x, classes, k, rng);
  }

  std::unique_ptr<models::ConditionalVae> cvae_;
};

}  // namespace

bool is_class(double label, std::size_t classes) {
  return label >= 0 && label == std::floor(label) && label < static_cast<double>(classes);
}

std::string classes_text(std::size_t classes) {
  return fmt::format("{} classes (0 to {})", classes, classes - 1);
}

ag::Var Model::labels_on(ag::Tape& tape, std::span<const std::int32_t> labels) {
  if (!conditional()) return {};
  if (labels.empty())
    throw std::invalid_argument(fmt::format(
        "the model is conditional ({} classes) and needs each example's class, but the data has no labels "
        "(give labelled data, or --label K where the command takes it)",
        num_classes()));
  for (std::int32_t label : labels)
    if (!is_class(label, num_classes()))
      throw std::invalid_argument(fmt::format("label {} is not one of the model's {}", label, classes_text(num_classes())));
  models::class_indices(labels, labels_);
  return tape.constant(labels_);
}

std::vector<double> Model::importance_weighted_bound(ag::Tape& tape, const ag::Array& x,
                                                     std::span<const std::int32_t> labels, std::size_t k,
                                                     ag::Rng& rng) {
  labels_on(tape, labels);  // checks them, into labels_
  return bound(tape, x, labels_, k, rng);
}

ag::Array Model::decoded(const ag::Array& z, std::span<const std::int32_t> labels) {
  ag::Tape tape;
  ag::NoGradGuard no_grad(tape);
  ag::Var y = labels_on(tape, labels);
  return expected_x(decode(tape.constant(z), y)).value();
}

std::vector<std::int32_t> class_rows(std::size_t num_classes, std::size_t per_class) {
  std::vector<std::int32_t> labels(num_classes * per_class);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i / per_class);
  return labels;
}

std::unique_ptr<Model> make_model(const models::VaeConfig& config, std::size_t num_classes, ag::Rng& rng) {
  if (num_classes == 0) return std::make_unique<PlainModel>(std::make_unique<models::Vae>(config, rng));
  return std::make_unique<ConditionalModel>(std::make_unique<models::ConditionalVae>(config, num_classes, rng));
}

std::unique_ptr<Model> load_model_file(const nn::SafetensorsFile& file) {
  if (models::is_conditional(file)) return std::make_unique<ConditionalModel>(models::load_conditional_vae(file));
  return std::make_unique<PlainModel>(models::load_vae(file));
}

}  // namespace tools
