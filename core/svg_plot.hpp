// Line charts as standalone SVG (for the run report and sweep plots): no plotting library, no
// fonts to install, renders in any browser and embeds in HTML as is.
#pragma once

#include <string>
#include <vector>

namespace harvest {

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;  // same length as x; non-finite points are skipped
};

struct ChartOptions {
  std::string title;
  std::string x_label = "step";
  std::string y_label;
  int width = 480;
  int height = 280;
  bool log_y = false;  // log10 y axis (positive values only)
};

// An <svg> element with axes, ticks, one polyline per series and a legend. Series with no
// finite points are listed in the legend as "(no data)".
std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& options);

// Round tick values covering [lo, hi] (about `count` of them, steps of 1, 2 or 5 x 10^k).
std::vector<double> nice_ticks(double lo, double hi, int count);

// Text safe for XML/HTML content and attributes.
std::string xml_escape(const std::string& text);

}  // namespace harvest
