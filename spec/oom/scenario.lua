-- The fake server's scenario for scripts/oom.sh (fake-server --scenario spec/oom/scenario.lua).
return require("spec.oom.bodies").scenario()
