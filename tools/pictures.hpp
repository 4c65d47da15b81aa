// The pictures train_vae leaves behind, drawn with cairo and written as PNG.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "autograd/array.hpp"

typedef struct _cairo_surface cairo_surface_t;

namespace pictures {

/// Writes a cairo image surface as PNG through nn::write_file_atomically, so a reader never
/// sees half a picture and an old picture survives a failed write.
void save_png(cairo_surface_t* surface, const std::string& path);

/// Rows of `images` are h*w gray values in [0, 1] (clamped), or with channels 3, h*w*3 RGB
/// values (interleaved: r, g, b of a pixel together); they are tiled `cols` to a row with a
/// 2-pixel gap, each pixel drawn `scale` times larger (less if the picture would pass 32767
/// pixels a side or 2^26 in all). Returns false, after a warning on stderr, if even scale 1 is
/// too large or cairo cannot make the picture: it is skipped, not written.
///   write_grid("samples.png", samples /* [64, 784] */, 28, 28, 8);
bool write_grid(const std::string& path, const ag::Array& images, std::size_t h, std::size_t w,
                std::size_t cols, int scale = 2, std::size_t channels = 1);

/// A scatter plot of the 2-D points in `points` ([N, 2]) coloured by `labels` (values index
/// `names`, which label the legend), with the axes' ranges written at the corners. Returns
/// false, after a warning, if cairo cannot make the picture.
bool write_scatter(const std::string& path, const ag::Array& points, const std::vector<int>& labels,
                   const std::vector<std::string>& names, const std::string& title);

/// Side of a square image with `features` pixels, or 0 when `features` is not a square.
std::size_t square_side(std::size_t features);

}  // namespace pictures
