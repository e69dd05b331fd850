// Package shellbench is the empty sandbox's benchmark workload, shared by
// the benchmarks that run it natively, under bash, and inside the module
// on the local host: a script of 20 commands over 1,000 files.
package shellbench

import (
	"fmt"
	"strings"
)

// Files returns the workload's 1,000 files, path to content: ten
// directories of a hundred files of twenty lines, some with TODO or ERROR.
func Files() map[string]string {
	files := make(map[string]string, 1000)
	for d := 0; d < 10; d++ {
		for f := 0; f < 100; f++ {
			n := d*100 + f
			var b strings.Builder
			for l := 0; l < 20; l++ {
				switch {
				case (n+l)%17 == 0:
					fmt.Fprintf(&b, "line %d: TODO fix item %d\n", l, n)
				case (n*l)%23 == 5:
					fmt.Fprintf(&b, "line %d: ERROR code=%d\n", l, n%7)
				default:
					fmt.Fprintf(&b, "line %d: value %d of file %d\n", l, (n*31+l*7)%1000, n)
				}
			}
			files[fmt.Sprintf("src/d%d/file%03d.txt", d, n)] = b.String()
		}
	}
	return files
}

// Script is the workload's 20 commands, of the kind a model runs over a
// project: finds, greps, loops, in-place edits, copies, checksums, diffs.
const Script = `find . -type f | wc -l
find . -name '*.txt' | sort | head -3
grep -rl TODO src | wc -l
grep -rc ERROR src | sort -t: -k2 -n | tail -1
cat src/d1/*.txt | wc -l
for f in src/d2/*.txt; do wc -l < "$f"; done | sort -n | uniq -c
sed -i 's/TODO/DONE/g' src/d3/*.txt
grep -r DONE src/d3 | wc -l
ls src | wc -l
grep -rn value src/d4 | cut -d: -f1 | sort -u | wc -l
head -n 2 src/d5/*.txt | tail -1
tail -n 1 src/d6/*.txt | grep -c line
tr a-z A-Z < src/d7/file750.txt | head -1
mkdir -p out && cp src/d8/*.txt out/ && ls out | wc -l
rm -rf out
md5sum src/d9/*.txt | wc -l
diff src/d9/file900.txt src/d9/file901.txt | wc -l
find src/d0 -name '*.txt' | xargs cat | wc -c
sort -u src/d1/file100.txt | wc -l
grep -h ERROR src/d2/*.txt | sort | uniq -c | sort -rn | head -1
`
