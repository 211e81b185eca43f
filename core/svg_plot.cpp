#include "core/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

namespace harvest {
namespace {

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string number(double v) {
  std::ostringstream out;
  out.precision(4);
  out << v;
  return out.str();
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, count);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  // Integer multiples of the step: no drift from repeated addition.
  std::vector<double> ticks;
  for (auto k = static_cast<long long>(std::ceil(lo / step - 1e-9)); k * step <= hi + step * 1e-9; ++k)
    ticks.push_back(static_cast<double>(k) * step);
  return ticks;
}

std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& o) {
  const double left = 60, right = 12, top = 28, bottom = 40;
  const double plot_w = o.width - left - right, plot_h = o.height - top - bottom;
  auto ty = [&](double y) { return o.log_y ? std::log10(y) : y; };
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!o.log_y || y > 0); };

  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo, y_lo = x_lo, y_hi = -x_lo;
  for (const auto& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (usable(s.x[i], s.y[i])) {
        x_lo = std::min(x_lo, s.x[i]), x_hi = std::max(x_hi, s.x[i]);
        y_lo = std::min(y_lo, ty(s.y[i])), y_hi = std::max(y_hi, ty(s.y[i]));
      }
  const bool empty = !std::isfinite(x_lo);
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (x_hi == x_lo) x_lo -= 0.5, x_hi += 0.5;
  if (y_hi == y_lo) y_lo -= 0.5, y_hi += 0.5;
  const double pad = (y_hi - y_lo) * 0.05;
  y_lo -= pad, y_hi += pad;
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * plot_w; };
  auto py = [&](double y) { return top + (1.0 - (ty(y) - y_lo) / (y_hi - y_lo)) * plot_h; };

  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << o.width << "\" height=\"" << o.height
      << "\" viewBox=\"0 0 " << o.width << " " << o.height << "\" font-family=\"sans-serif\" font-size=\"11\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << o.width / 2 << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">" << xml_escape(o.title)
      << "</text>\n";
  // Axes and ticks.
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << plot_h
      << "\" fill=\"none\" stroke=\"#444\"/>\n";
  for (double t : nice_ticks(x_lo, x_hi, 6)) {
    const double x = px(t);
    svg << "<line x1=\"" << x << "\" y1=\"" << top + plot_h << "\" x2=\"" << x << "\" y2=\"" << top + plot_h + 4
        << "\" stroke=\"#444\"/><text x=\"" << x << "\" y=\"" << top + plot_h + 16 << "\" text-anchor=\"middle\">"
        << number(t) << "</text>\n";
  }
  for (double t : nice_ticks(y_lo, y_hi, 5)) {
    const double y = top + (1.0 - (t - y_lo) / (y_hi - y_lo)) * plot_h;
    svg << "<line x1=\"" << left << "\" y1=\"" << y << "\" x2=\"" << left + plot_w << "\" y2=\"" << y
        << "\" stroke=\"#ddd\"/><text x=\"" << left - 4 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\">"
        << number(o.log_y ? std::pow(10.0, t) : t) << "</text>\n";
  }
  svg << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << o.height - 6 << "\" text-anchor=\"middle\">"
      << xml_escape(o.x_label) << "</text>\n"
      << "<text transform=\"translate(14 " << top + plot_h / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << xml_escape(o.y_label) << "</text>\n";
  // Series and legend.
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* color = kColors[k % (sizeof kColors / sizeof *kColors)];
    std::ostringstream points;
    size_t used = 0;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (usable(s.x[i], s.y[i])) points << px(s.x[i]) << "," << py(s.y[i]) << " ", ++used;
    if (used > 1)
      svg << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"" << points.str()
          << "\"/>\n";
    else if (used == 1)
      svg << "<circle r=\"3\" fill=\"" << color << "\" cx=\"" << points.str().substr(0, points.str().find(','))
          << "\" cy=\"" << points.str().substr(points.str().find(',') + 1) << "\"/>\n";
    const double ly = top + 12 + 14 * static_cast<double>(k);
    svg << "<line x1=\"" << left + 8 << "\" y1=\"" << ly - 4 << "\" x2=\"" << left + 24 << "\" y2=\"" << ly - 4
        << "\" stroke=\"" << color << "\" stroke-width=\"2\"/><text x=\"" << left + 28 << "\" y=\"" << ly << "\">"
        << xml_escape(s.name) << (used ? "" : " (no data)") << "</text>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace harvest
