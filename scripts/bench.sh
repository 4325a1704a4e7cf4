#!/bin/sh
# make bench: runs bench/ from an optimized build and writes docs/bench.md
# with its tables and docs/bench-propagation.png.
set -eu
build=${1:-build-bench}
out=docs/bench.md
data=$build/bench-data
mkdir -p "$data"
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) ($(nproc) cores, $(uname -r)); every figure is measured side by side in the same run."
	echo "Reproduce: \`make bench\` (or the command under each section)."
	echo
	echo "## Engine"
	echo
	echo "\`$build/bench-engine $data\`"
	echo
	"$build/bench-engine" "$data"
	echo "![propagation](bench-propagation.png)"
	echo
	echo "## A large generated scenario through imp"
	echo
	echo "\`$build/bench-scenario 1000000\`"
	echo
	echo "| scenario | time | rate | memory | status |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	"$build/bench-scenario" 1000000
	echo
	echo "## Broker"
	echo
	echo "\`$build/bench-broker $build/importanced 20000\`"
	echo
	"$build/bench-broker" "$build/importanced" 20000
} > "$out.tmp"
mv "$out.tmp" "$out"
gnuplot <<GP
set terminal pngcairo size 800,500
set output 'docs/bench-propagation.png'
set logscale xy
set xlabel 'messages / inherits / chain depth affected'
set ylabel 'donor to background and back (s)'
set key top left
set grid
plot '$data/propagation.dat' index 0 with linespoints title 'queued messages', \
     '' index 1 with linespoints title 'inherits', \
     '' index 2 with linespoints title 'chain depth', \
     1e-8*x with lines dashtype 2 title 'linear (slope 1)'
GP
echo "wrote $out and docs/bench-propagation.png"
