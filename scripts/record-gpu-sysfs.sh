#!/bin/sh
# Record what dstack-supervisor init's GPU probe (src/init/gpu-probe.ts) reads from a host's
# sysfs, for a test fixture: for every PCI function, its vendor, device and class files and the
# name of the driver bound to it, as a tarball laid out like test/fixtures/sysfs/recorded/*/
# (sys/bus/pci/devices/ADDRESS/{vendor,device,class,driver}). Every function is recorded, not
# only the GPUs, because how the probe names a slot depends on every address of the host.
#
#   usage: record-gpu-sysfs.sh OUTPUT.tar.gz [ROOT]
#
# ROOT (default /) is where sys/ is read from. Reads only, needs no root: these sysfs files are
# world-readable. Nothing else is taken: no serial numbers, no hostname; a file RECORDED holds
# the time (UTC) and, when ROOT is /, the kernel release.
set -eu

prog=${0##*/}
if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
	echo "usage: $prog OUTPUT.tar.gz [ROOT]" >&2
	exit 64
fi
out=$1
root=${2:-/}
case $out in
/*) ;;
*) out=$(pwd)/$out ;;
esac
devices=${root%/}/sys/bus/pci/devices
if [ ! -d "$devices" ]; then
	echo "$prog: $devices: no such directory" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tree=$work/sys/bus/pci/devices
mkdir -p "$tree"
for dev in "$devices"/*; do
	[ -e "$dev" ] || continue
	address=${dev##*/}
	# A PCI address is hex digits, colons and a dot ("0000:18:00.0", "10000:e0:00.5" under VMD).
	case $address in
	*[!0-9a-fA-F:.]* | '')
		echo "$prog: skipping $address: not a PCI address" >&2
		continue
		;;
	esac
	mkdir "$tree/$address"
	for name in vendor device class; do
		if [ -r "$dev/$name" ]; then
			cat "$dev/$name" >"$tree/$address/$name"
		fi
	done
	# The probe needs only the driver's name; the link is made relative to the recorded tree.
	if [ -L "$dev/driver" ]; then
		target=$(readlink "$dev/driver")
		ln -s "../../../../bus/pci/drivers/${target##*/}" "$tree/$address/driver"
	fi
done

{
	echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	if [ "$root" = / ]; then
		echo "kernel: $(uname -r)"
	fi
} >"$work/RECORDED"
tar -C "$work" -czf "$out" RECORDED sys
echo "$prog: wrote $out" >&2
