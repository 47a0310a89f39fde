-- Argo CD health check for rollup.esops.dev/RollupMigration
-- (resource.customizations.health.rollup.esops.dev_RollupMigration). First match wins:
--   no status, or status for an older generation -> Progressing (waiting for the operator)
--   Stalled=True     -> Degraded    (Blocked at Planned, VerificationFailed, LastRollupJob, Conflict, ...)
--   Reconciling=True -> Progressing (provisioning, running side by side, stopping the rollup job)
--   Ready=True       -> Healthy     (cut over)
--   Ready reason AwaitingApproval or AwaitingCutOverApproval -> Suspended (a person approves the next step)
--   otherwise        -> Progressing
local hs = {}

local function condition(status, type_)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready, "Cut over")
  return hs
end

if ready ~= nil and (ready.reason == "AwaitingApproval" or ready.reason == "AwaitingCutOverApproval") then
  hs.status = "Suspended"
  hs.message = text(ready, ready.reason)
  return hs
end

hs.status = "Progressing"
hs.message = text(ready, "Waiting for the operator")
return hs
