// libFuzzer target: the CSV reader on any text, without and with a label column. Bad input
// must end in datasets::DataError; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "datasets/csv.hpp"
#include "datasets/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (std::size_t label_column : {0, 1, 3}) {
    try {
      const datasets::Dataset d = datasets::parse_csv_dataset(text, "fuzz.csv", label_column);
      if (d.size() > 0 && d.features() == 0) __builtin_trap();
    } catch (const datasets::DataError&) {
    }
  }
  return 0;
}
