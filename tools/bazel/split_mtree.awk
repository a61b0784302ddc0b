# Splits an mtree spec of a py_binary (from tar.bzl's mtree_spec) into image layers.
# Usage: awk -v group=interpreter|packages|app -f split_mtree.awk spec.mtree
#
# interpreter: the hermetic CPython repository in runfiles (…python_3_11_<platform>/)
# packages:    wheel repositories of the @pip hub (…~pip~pip_311_<name>/; "+" on Bazel 8)
# app:         everything else: first-party code, generated stubs, the launcher.
# Layers are ordered interpreter < packages < app, so a code change rebuilds one small layer.
/^#/ { print; next }
NF == 0 { next }
{
	path = $1
	if (path ~ /\.runfiles\/[^\/]*python_3_11[^\/]*(\/|$)/) {
		kind = "interpreter"
	} else if (path ~ /\.runfiles\/[^\/]*[~+]pip[~+][^\/]*(\/|$)/) {
		kind = "packages"
	} else {
		kind = "app"
	}
	if (kind == group) print
}
