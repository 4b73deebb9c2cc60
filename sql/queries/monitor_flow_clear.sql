-- Forgets a flow's stages (before they are written anew).
DELETE FROM __schema__.monitor_flows WHERE flow = $1
