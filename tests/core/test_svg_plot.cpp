#include <catch2/catch.hpp>

#include <cmath>

#include "core/svg_plot.hpp"

using namespace harvest;

TEST_CASE("nice ticks are round and cover the range", "[core][plot]") {
  CHECK(nice_ticks(0, 10, 5) == std::vector<double>{0, 2, 4, 6, 8, 10});
  const auto fine = nice_ticks(0.13, 0.61, 5);
  REQUIRE(fine.size() == 5);
  for (size_t i = 0; i < fine.size(); ++i) CHECK(fine[i] == Approx(0.2 + 0.1 * static_cast<double>(i)));
  const auto t = nice_ticks(-3, 3, 6);
  CHECK(t.front() == -3);
  CHECK(t.back() == 3);
  CHECK(nice_ticks(5, 5, 4) == std::vector<double>{5});
}

TEST_CASE("line chart: one polyline per series, escaped labels, gaps skipped", "[core][plot]") {
  ChartOptions o;
  o.title = "loss <vtc & mlm>";
  o.y_label = "loss";
  const std::string svg = line_chart_svg({{"vtc", {0, 1, 2, 3}, {4.0, 3.0, NAN, 1.0}},
                                          {"mlm", {0, 1, 2, 3}, {6.0, 5.0, 4.5, 4.0}},
                                          {"empty", {}, {}}},
                                         o);
  CHECK_THAT(svg, Catch::StartsWith("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK_THAT(svg, Catch::Contains("loss &lt;vtc &amp; mlm&gt;"));
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1)) ++lines;
  CHECK(lines == 2);
  CHECK_THAT(svg, Catch::Contains("empty (no data)"));
  CHECK_THAT(svg, !Catch::Contains("nan"));
  CHECK_THAT(svg, Catch::EndsWith("</svg>\n"));
}

TEST_CASE("log axis drops non-positive values", "[core][plot]") {
  ChartOptions o;
  o.log_y = true;
  const std::string svg = line_chart_svg({{"lr", {0, 1, 2}, {1e-4, 0.0, 1e-6}}}, o);
  CHECK_THAT(svg, Catch::Contains("<polyline"));
  CHECK_THAT(svg, !Catch::Contains("inf"));
}
