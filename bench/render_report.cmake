# The HTML timing report as people see it: bench-report writes it from a
# results file (with a baseline and a forecast), headless Chromium (Debian's
# `chromium`) renders it to a PNG, and a script run in the rendered page
# checks that every text of each chart, the legend included, lies inside its
# chart. The report has tables and no <pre>; the first chart shows ours, the
# other approach and the baseline.
#
#   cmake -DBENCH_REPORT=... -DRESULTS=... -DOUT_DIR=... [-DRENDER=OFF] -P render_report.cmake
#
# With -DRENDER=OFF (the default test run, which has no browser) only the
# page's structure is checked.
foreach(var BENCH_REPORT RESULTS OUT_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "render_report.cmake: pass -D${var}=...")
  endif()
endforeach()
if(NOT DEFINED RENDER)
  set(RENDER ON)
endif()
if(RENDER)
  find_program(CHROMIUM NAMES chromium chromium-browser)
  if(NOT CHROMIUM)
    message(FATAL_ERROR "chromium is not installed: this test renders the report with Debian's "
                        "chromium (apt-get install chromium; scripts/test-slow installs it)")
  endif()
endif()
file(MAKE_DIRECTORY "${OUT_DIR}")
set(html "${OUT_DIR}/report.html")
set(png "${OUT_DIR}/report.png")
file(REMOVE "${html}" "${png}")

execute_process(COMMAND "${BENCH_REPORT}" "${RESULTS}" --baseline "${RESULTS}" --html "${html}"
                        --forecast-rows 10000000
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "bench-report exited ${rc}: ${err}")
endif()
file(READ "${html}" page)

# Tables, not a preformatted block.
if(page MATCHES "<pre")
  message(FATAL_ERROR "the report still has a <pre> block")
endif()
string(REGEX MATCHALL "<table>" tables "${page}")
list(LENGTH tables n_tables)
if(n_tables LESS 8)
  message(FATAL_ERROR "the report has ${n_tables} tables; expected one per section (8 or more)")
endif()
foreach(name "our 002, quickstart shape" "the quickstart's approach, quickstart shape (same run)"
             "our 002, quickstart shape, baseline (scaled)" "our 002, production shape")
  string(FIND "${page}" ">${name}</text>" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the first chart's legend has no \"${name}\"")
  endif()
endforeach()

if(NOT RENDER)
  message(STATUS "${html}: ${n_tables} tables, no <pre>, the first chart's legend complete (not rendered)")
  return()
endif()

# Rendered: every text of every chart inside its chart, legend lines apart.
set(check_js [=[
<script>
const problems = [];
let legends = 0;
for (const svg of document.querySelectorAll('svg')) {
  const w = svg.width.baseVal.value, h = svg.height.baseVal.value;
  let previous = null;
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBBox();
    if (b.width <= 0) problems.push('not drawn: ' + t.textContent);
    if (b.x < 0 || b.y < 0 || b.x + b.width > w || b.y + b.height > h)
      problems.push('outside its chart: ' + t.textContent);
    if (t.classList.contains('legend')) {
      ++legends;
      if (previous && b.y < previous.y + previous.height - 1)
        problems.push('legend lines overlap: ' + t.textContent);
      previous = b;
    }
  }
}
document.title = problems.length ? 'RENDER-CHECK FAILED: ' + problems.join('; ')
                                 : 'RENDER-CHECK OK, legend lines: ' + legends;
</script>
]=])
string(REPLACE "</body>" "${check_js}</body>" checked "${page}")
file(WRITE "${OUT_DIR}/report-check.html" "${checked}")
set(chrome_flags --headless=new --no-sandbox --disable-gpu --hide-scrollbars)
execute_process(COMMAND "${CHROMIUM}" ${chrome_flags} --dump-dom "file://${OUT_DIR}/report-check.html"
                RESULT_VARIABLE rc OUTPUT_VARIABLE dom ERROR_QUIET TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "chromium --dump-dom exited ${rc}")
endif()
if(NOT dom MATCHES "<title>RENDER-CHECK OK, legend lines: ([0-9]+)</title>")
  string(REGEX MATCH "<title>[^<]*</title>" title "${dom}")
  message(FATAL_ERROR "the rendered report fails its check: ${title}")
endif()
set(legend_lines ${CMAKE_MATCH_1})
if(legend_lines LESS 12)
  message(FATAL_ERROR "only ${legend_lines} legend lines were rendered")
endif()

# The picture itself.
execute_process(COMMAND "${CHROMIUM}" ${chrome_flags} --window-size=1100,4000 "--screenshot=${png}"
                        "file://${html}"
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET TIMEOUT 120)
if(NOT rc EQUAL 0 OR NOT EXISTS "${png}")
  message(FATAL_ERROR "chromium --screenshot exited ${rc} and wrote no ${png}")
endif()
file(SIZE "${png}" png_bytes)
file(READ "${png}" header LIMIT 24 HEX)
# The PNG signature, then IHDR with the width (1100 = 0x44c) and the height.
if(NOT header MATCHES "^89504e470d0a1a0a0000000d494844520000044c")
  message(FATAL_ERROR "${png} is not a 1100-pixel-wide PNG (header ${header})")
endif()
if(png_bytes LESS 50000)
  message(FATAL_ERROR "${png} has only ${png_bytes} bytes: nothing much was drawn")
endif()
message(STATUS "rendered ${png} (${png_bytes} bytes): ${n_tables} tables, ${legend_lines} legend lines, "
               "every chart text inside its chart")
