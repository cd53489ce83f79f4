# Runs a command for a CTest test and requires BOTH its exit code and its output
# (PASS_REGULAR_EXPRESSION alone makes CTest ignore the exit code).
#
#   cmake -DEXPECT_EXIT=N [-DEXPECT_REGEX=RE] [-DREJECT_REGEX=RE]
#         [-DSCALE_JSON=IN -DSCALE_JSON_OUT=OUT -DSCALE_DIVISOR=D]
#         -P expect_run.cmake -- COMMAND [ARG...]
#
# EXPECT_REGEX must match and REJECT_REGEX must not match stdout+stderr.
# SCALE_JSON: before running, write OUT, a copy of the Google Benchmark JSON IN
# with every real_time divided by D (a fake baseline D times faster).
cmake_minimum_required(VERSION 3.19)  # string(JSON)

if(NOT DEFINED EXPECT_EXIT)
  message(FATAL_ERROR "expect_run.cmake: -DEXPECT_EXIT=N is required")
endif()

set(cmd)
set(after_dashes FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    string(REPLACE ";" "\\;" arg "${CMAKE_ARGV${i}}")  # keep an argument's ; in it
    list(APPEND cmd "${arg}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(after_dashes TRUE)
  endif()
endforeach()
if(NOT cmd)
  message(FATAL_ERROR "expect_run.cmake: no command after --")
endif()

# The decimal NUMBER divided by the positive integer DIVISOR, as a JSON number
# (CMake's math() has only 64-bit integers: divide the significant digits).
function(divide_number number divisor out)
  if(NOT number MATCHES "^(-?)([0-9]+)(\\.([0-9]+))?([eE]([-+]?[0-9]+))?$")
    message(FATAL_ERROR "expect_run.cmake: not a number: ${number}")
  endif()
  set(sign "${CMAKE_MATCH_1}")
  set(digits "${CMAKE_MATCH_2}${CMAKE_MATCH_4}")
  string(LENGTH "${CMAKE_MATCH_4}" fraction)
  set(exponent 0)
  if(CMAKE_MATCH_6)
    math(EXPR exponent "${CMAKE_MATCH_6}")
  endif()
  math(EXPR exponent "${exponent} - ${fraction}")
  string(REGEX REPLACE "^0+" "" digits "${digits}")
  if(digits STREQUAL "")
    set(${out} 0 PARENT_SCOPE)
    return()
  endif()
  # Exactly 17 significant digits: precise, and within int64.
  string(LENGTH "${digits}" n)
  if(n GREATER 17)
    math(EXPR exponent "${exponent} + ${n} - 17")
    string(SUBSTRING "${digits}" 0 17 digits)
  endif()
  while(n LESS 17)
    string(APPEND digits 0)
    math(EXPR exponent "${exponent} - 1")
    math(EXPR n "${n} + 1")
  endwhile()
  math(EXPR digits "${digits} / ${divisor}")
  set(${out} "${sign}${digits}e${exponent}" PARENT_SCOPE)
endfunction()

if(DEFINED SCALE_JSON)
  if(NOT EXISTS "${SCALE_JSON}")
    message(FATAL_ERROR "expect_run.cmake: ${SCALE_JSON} does not exist (run the test that writes it first)")
  endif()
  file(READ "${SCALE_JSON}" doc)
  string(JSON count LENGTH "${doc}" benchmarks)
  if(count EQUAL 0)
    message(FATAL_ERROR "expect_run.cmake: ${SCALE_JSON} has no benchmarks")
  endif()
  math(EXPR last "${count} - 1")
  foreach(i RANGE ${last})
    string(JSON time GET "${doc}" benchmarks ${i} real_time)
    divide_number("${time}" "${SCALE_DIVISOR}" time)
    string(JSON doc SET "${doc}" benchmarks ${i} real_time "${time}")
  endforeach()
  file(WRITE "${SCALE_JSON_OUT}" "${doc}\n")
endif()

execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output)
message("${output}")
set(failures)
if(NOT rc STREQUAL "${EXPECT_EXIT}")
  list(APPEND failures "exit code ${rc}, expected ${EXPECT_EXIT}")
endif()
if(DEFINED EXPECT_REGEX AND NOT output MATCHES "${EXPECT_REGEX}")
  list(APPEND failures "output does not match \"${EXPECT_REGEX}\"")
endif()
if(DEFINED REJECT_REGEX AND output MATCHES "${REJECT_REGEX}")
  list(APPEND failures "output matches \"${REJECT_REGEX}\"")
endif()
if(failures)
  list(JOIN failures "; " failures)
  message(FATAL_ERROR "${failures}")
endif()
