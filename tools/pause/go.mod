// The real node's pod sandbox ("pause") program: standard library only, built by
// `tools/install.sh --node` so no image has to come from a registry.
module replicant.local/tools/pause

go 1.26.0
