#include "tools/pictures.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <filesystem>
#include <memory>
#include <stdexcept>

#include <cairo.h>
#include <fmt/format.h>

#include "nn/atomic_file.hpp"

namespace pictures {

// Through nn::write_file_atomically, so a reader never sees half a picture and an old
// picture survives a failed write.
void save_png(cairo_surface_t* surface, const std::string& path) {
  cairo_surface_flush(surface);
  nn::write_file_atomically(path, [&](const nn::ByteSink& write) {
    // cairo is C: an exception must not cross it, so the callback keeps it for later.
    struct Sink {
      const nn::ByteSink* write;
      std::exception_ptr error;
    } sink{&write, nullptr};
    const cairo_status_t status = cairo_surface_write_to_png_stream(
        surface,
        [](void* closure, const unsigned char* data, unsigned int n) {
          auto* s = static_cast<Sink*>(closure);
          try {
            (*s->write)(data, n);
            return CAIRO_STATUS_SUCCESS;
          } catch (...) {
            s->error = std::current_exception();
            return CAIRO_STATUS_WRITE_ERROR;
          }
        },
        &sink);
    if (sink.error) std::rethrow_exception(sink.error);
    if (status != CAIRO_STATUS_SUCCESS)
      throw std::runtime_error(fmt::format("cannot write {}: {}", path, cairo_status_to_string(status)));
  });
}

namespace {

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using Context = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

// cairo refuses image surfaces wider or taller than 32767 pixels; the pixel cap keeps one
// picture under 256 MB.
constexpr std::size_t kMaxSide = 32767;
constexpr std::size_t kMaxPixels = std::size_t{1} << 26;

// A new RGB surface, or null (after a warning naming the picture) if cairo cannot make one,
// e.g. out of memory: the picture is skipped, the run goes on.
Surface new_surface(const std::string& path, std::size_t width, std::size_t height) {
  Surface surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(width), static_cast<int>(height)),
                  cairo_surface_destroy);
  const cairo_status_t status = cairo_surface_status(surface.get());
  if (status == CAIRO_STATUS_SUCCESS) return surface;
  fmt::print(stderr, "warning: skipped {} ({}x{} pixels): {}\n", path, width, height,
             cairo_status_to_string(status));
  return Surface(nullptr, cairo_surface_destroy);
}

// Ten well-separated colours (the Tableau palette), then repeats.
constexpr std::array<std::array<double, 3>, 10> kPalette = {{{0.12, 0.47, 0.71},
                                                             {1.00, 0.50, 0.05},
                                                             {0.17, 0.63, 0.17},
                                                             {0.84, 0.15, 0.16},
                                                             {0.58, 0.40, 0.74},
                                                             {0.55, 0.34, 0.29},
                                                             {0.89, 0.47, 0.76},
                                                             {0.50, 0.50, 0.50},
                                                             {0.74, 0.74, 0.13},
                                                             {0.09, 0.75, 0.81}}};

}  // namespace

std::size_t square_side(std::size_t features) {
  const auto side = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(features))));
  return side * side == features ? side : 0;
}

bool write_grid(const std::string& path, const ag::Array& images, std::size_t h, std::size_t w,
                std::size_t cols, int scale, std::size_t channels) {
  const std::size_t n = images.shape()[0];
  if (channels != 1 && channels != 3)
    throw std::invalid_argument(fmt::format("write_grid: {} channels (1 gray or 3 RGB)", channels));
  if (images.shape()[1] != h * w * channels)
    throw std::invalid_argument(fmt::format("write_grid: rows of {} values are not {}x{}x{} images",
                                            images.shape()[1], h, w, channels));
  if (n == 0 || cols == 0 || scale < 1)
    throw std::invalid_argument("write_grid: needs at least one image, one column and a scale of 1 or more");
  const std::size_t gap = 2, rows = (n + cols - 1) / cols;
  // Each side in double first: the product of hostile sizes may not fit in size_t.
  auto side = [&](std::size_t count, std::size_t pixels, std::size_t s) {
    return static_cast<double>(count) * (static_cast<double>(pixels) * static_cast<double>(s) + gap) + gap;
  };
  auto fits = [&](std::size_t s) {
    const double width = side(cols, w, s), height = side(rows, h, s);
    return width <= kMaxSide && height <= kMaxSide && width * height <= static_cast<double>(kMaxPixels);
  };
  // Too large at the asked scale: draw smaller; too large even at scale 1: skip it.
  auto s = static_cast<std::size_t>(scale);
  while (s > 1 && !fits(s)) s /= 2;
  if (!fits(s)) {
    fmt::print(stderr, "warning: skipped {}: {} images of {}x{} in {} columns need {:.0f}x{:.0f} pixels, "
               "more than a picture holds ({} a side, {} in all)\n", path, n, h, w, cols, side(cols, w, 1),
               side(rows, h, 1), kMaxSide, kMaxPixels);
    return false;
  }
  const auto width = static_cast<std::size_t>(side(cols, w, s));
  const auto height = static_cast<std::size_t>(side(rows, h, s));
  Surface surface = new_surface(path, width, height);
  if (!surface) return false;
  auto* data = cairo_image_surface_get_data(surface.get());
  const int stride = cairo_image_surface_get_stride(surface.get());
  std::fill(data, data + static_cast<std::ptrdiff_t>(stride) * static_cast<std::ptrdiff_t>(height), 0x40);  // dark gray gaps
  auto byte = [](float v) { return static_cast<std::uint32_t>(std::lround(std::clamp(v, 0.0F, 1.0F) * 255.0F)); };
  const std::size_t green = channels == 3 ? 1 : 0, blue = channels == 3 ? 2 : 0;  // gray: r = g = b
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t x0 = gap + (k % cols) * (w * s + gap), y0 = gap + (k / cols) * (h * s + gap);
    for (std::size_t y = 0; y < h * s; ++y) {
      auto* row = reinterpret_cast<std::uint32_t*>(data + static_cast<std::ptrdiff_t>(stride) * (y0 + y));
      for (std::size_t x = 0; x < w * s; ++x) {
        const std::size_t at = ((y / s) * w + x / s) * channels;
        row[x0 + x] = (byte(images(k, at)) << 16) | (byte(images(k, at + green)) << 8) | byte(images(k, at + blue));
      }
    }
  }
  cairo_surface_mark_dirty(surface.get());
  save_png(surface.get(), path);
  return true;
}

bool write_scatter(const std::string& path, const ag::Array& points, const std::vector<int>& labels,
                   const std::vector<std::string>& names, const std::string& title) {
  const std::size_t n = points.shape()[0];
  if (n == 0 || points.shape()[1] != 2 || labels.size() != n)
    throw std::invalid_argument("write_scatter: needs [N, 2] points (N > 0) and N labels");
  const double plot = 640, margin = 40, legend = 170;
  Surface surface = new_surface(path, static_cast<std::size_t>(plot + 2 * margin + legend),
                                static_cast<std::size_t>(plot + 2 * margin));
  if (!surface) return false;
  Context cr(cairo_create(surface.get()), cairo_destroy);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());

  // Axis ranges from the 0.5% and 99.5% quantiles, so a few far points don't squash the rest.
  auto range = [&](std::size_t axis) {
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = points(i, axis);
    std::sort(v.begin(), v.end());
    float lo = v[n / 200], hi = v[n - 1 - n / 200];
    if (hi - lo < 1e-6F) hi = lo + 1.0F;
    const float pad = 0.05F * (hi - lo);
    return std::pair{lo - pad, hi + pad};
  };
  const auto [x_lo, x_hi] = range(0);
  const auto [y_lo, y_hi] = range(1);
  cairo_set_source_rgb(cr.get(), 0.2, 0.2, 0.2);
  cairo_rectangle(cr.get(), margin, margin, plot, plot);
  cairo_set_line_width(cr.get(), 1.0);
  cairo_stroke(cr.get());

  for (std::size_t i = 0; i < n; ++i) {
    const double px = margin + (points(i, 0) - x_lo) / (x_hi - x_lo) * plot;
    const double py = margin + plot - (points(i, 1) - y_lo) / (y_hi - y_lo) * plot;
    if (px < margin || px > margin + plot || py < margin || py > margin + plot) continue;
    const auto& c = kPalette[static_cast<std::size_t>(labels[i]) % kPalette.size()];
    cairo_set_source_rgba(cr.get(), c[0], c[1], c[2], 0.6);
    cairo_arc(cr.get(), px, py, 1.8, 0, 2 * M_PI);
    cairo_fill(cr.get());
  }

  cairo_select_font_face(cr.get(), "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr.get(), 13);
  cairo_set_source_rgb(cr.get(), 0, 0, 0);
  cairo_move_to(cr.get(), margin, margin - 14);
  cairo_show_text(cr.get(), title.c_str());
  cairo_set_font_size(cr.get(), 11);
  const auto label_at = [&](double x, double y, const std::string& text) {
    cairo_move_to(cr.get(), x, y);
    cairo_show_text(cr.get(), text.c_str());
  };
  label_at(margin, margin + plot + 16, fmt::format("z1 from {:.2f}", x_lo));
  label_at(margin + plot - 90, margin + plot + 16, fmt::format("to {:.2f}", x_hi));
  label_at(4, margin + plot, fmt::format("{:.1f}", y_lo));
  label_at(4, margin + 10, fmt::format("{:.1f}", y_hi));

  cairo_set_font_size(cr.get(), 13);
  for (std::size_t k = 0; k < names.size(); ++k) {
    const double y = margin + 10 + 22.0 * static_cast<double>(k);
    const auto& c = kPalette[k % kPalette.size()];
    cairo_set_source_rgb(cr.get(), c[0], c[1], c[2]);
    cairo_rectangle(cr.get(), margin + plot + 20, y - 9, 12, 12);
    cairo_fill(cr.get());
    cairo_set_source_rgb(cr.get(), 0, 0, 0);
    label_at(margin + plot + 40, y + 2, names[k]);
  }
  save_png(surface.get(), path);
  return true;
}

}  // namespace pictures
