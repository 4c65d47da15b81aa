#include "tools/run_report.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <sstream>

#include <cairo.h>
#include <fmt/format.h>

#include "datasets/npy.hpp"
#include "tools/command.hpp"
#include "tools/pictures.hpp"

namespace fs = std::filesystem;

namespace tools {
namespace {

struct Series {
  const char* name;
  std::array<double, 3> colour;
  double EpochFigures::*field;
};

// One panel: the series against the epoch, with the y range written at the corners.
void draw_panel(cairo_t* cr, double x0, double y0, double w, double h, const std::string& title,
                const std::vector<EpochFigures>& epochs, const std::vector<Series>& series) {
  double lo = 1e300, hi = -1e300;
  for (const EpochFigures& e : epochs)
    for (const Series& s : series) {
      lo = std::min(lo, e.*s.field);
      hi = std::max(hi, e.*s.field);
    }
  if (hi - lo < 1e-9) hi = lo + 1;
  const double first = epochs.front().epoch, last = std::max(epochs.back().epoch, first + 1);
  auto px = [&](double epoch) { return x0 + (epoch - first) / (last - first) * w; };
  auto py = [&](double v) { return y0 + h - (v - lo) / (hi - lo) * h; };
  cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0, y0, w, h);
  cairo_stroke(cr);
  cairo_set_font_size(cr, 12);
  auto text = [&](double x, double y, const std::string& t) {
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, t.c_str());
  };
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(x0, y0 - 8, title);
  text(x0 - 58, y0 + 10, fmt::format("{:.2f}", hi));
  text(x0 - 58, y0 + h, fmt::format("{:.2f}", lo));
  text(x0, y0 + h + 16, fmt::format("epoch {:g}", first));
  text(x0 + w - 60, y0 + h + 16, fmt::format("epoch {:g}", last));
  for (std::size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    cairo_set_source_rgb(cr, s.colour[0], s.colour[1], s.colour[2]);
    cairo_set_line_width(cr, 2);
    for (std::size_t i = 0; i < epochs.size(); ++i) {
      const double x = px(epochs[i].epoch), y = py(epochs[i].*s.field);
      if (i == 0) cairo_move_to(cr, x, y);
      else cairo_line_to(cr, x, y);
    }
    cairo_stroke(cr);
    for (const EpochFigures& e : epochs) {
      cairo_arc(cr, px(e.epoch), py(e.*s.field), 3, 0, 6.2832);
      cairo_fill(cr);
    }
    cairo_rectangle(cr, x0 + w - 150, y0 + 12 + 18.0 * static_cast<double>(k), 12, 3);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text(x0 + w - 132, y0 + 18 + 18.0 * static_cast<double>(k), s.name);
  }
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<std::uint8_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

}  // namespace

void write_curves(const fs::path& path, const std::vector<EpochFigures>& epochs, const std::string& eval_name) {
  if (epochs.empty()) return;
  constexpr int kWidth = 1240, kHeight = 380;
  std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)> surface(
      cairo_image_surface_create(CAIRO_FORMAT_RGB24, kWidth, kHeight), cairo_surface_destroy);
  std::unique_ptr<cairo_t, decltype(&cairo_destroy)> cr(cairo_create(surface.get()), cairo_destroy);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  cairo_select_font_face(cr.get(), "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  const std::string eval_loss = eval_name + " loss";
  // The KL has a panel of its own: on the reconstruction's axis (ten times larger) its
  // changes would be flat.
  draw_panel(cr.get(), 70, 40, 320, 290, "loss per example (nats)", epochs,
             {{"train loss", {0.12, 0.47, 0.71}, &EpochFigures::train_loss},
              {eval_loss.c_str(), {1.0, 0.5, 0.05}, &EpochFigures::eval_loss}});
  draw_panel(cr.get(), 480, 40, 320, 290, "reconstruction (" + eval_name + ")", epochs,
             {{"reconstruction", {0.17, 0.63, 0.17}, &EpochFigures::recon}});
  draw_panel(cr.get(), 890, 40, 320, 290, "KL (" + eval_name + ")", epochs,
             {{"KL", {0.84, 0.15, 0.16}, &EpochFigures::kl}});
  pictures::save_png(surface.get(), path.string());
}

void write_report(const fs::path& out, const std::string& title, const std::vector<std::string>& configuration,
                  const std::vector<EpochFigures>& epochs, const std::string& eval_name,
                  const std::vector<std::string>& pictures) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title>\n"
      "<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}"
      "td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}img{{max-width:100%;display:block;"
      "margin:0.5em 0 1.5em}}code{{background:#f4f4f4}}</style></head>\n<body>\n<h1>{0}</h1>\n<h2>Configuration</h2>\n<ul>\n",
      escape(title));
  for (const std::string& line : configuration) html += fmt::format("<li><code>{}</code></li>\n", escape(line));
  html += fmt::format("</ul>\n<h2>Figures</h2>\n<table><tr><th>epoch</th><th>train loss</th><th>{} loss</th>"
                      "<th>reconstruction</th><th>KL</th></tr>\n", escape(eval_name));
  for (const EpochFigures& e : epochs)
    html += fmt::format("<tr><td>{:g}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td></tr>\n", e.epoch,
                        e.train_loss, e.eval_loss, e.recon, e.kl);
  html += "</table>\n<h2>Pictures</h2>\n";
  for (const std::string& name : pictures) {
    std::error_code ec;
    if (!fs::is_regular_file(out / name, ec)) continue;
    html += fmt::format("<h3>{}</h3>\n<img alt=\"{}\" src=\"data:image/png;base64,{}\">\n", escape(name), escape(name),
                        base64(datasets::read_file_bytes(out / name)));
  }
  // Marks, for whoever checks the page, how many of its images the browser could decode.
  html += "<p id=\"loaded\"></p>\n<script>window.addEventListener('load',function(){var i=document.images,n=0;"
          "for(var k=0;k<i.length;k++)if(i[k].complete&&i[k].naturalWidth>0)n++;"
          "document.getElementById('loaded').setAttribute('data-images',n+'/'+i.length);});</script>\n"
          "</body></html>\n";
  write_text(out / "report.html", html);
}

}  // namespace tools
