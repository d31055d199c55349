package redisstore

import "github.com/redis/go-redis/v9"

// The scripts share this prelude. ARGV[1] is always the key prefix; each
// script also takes the store's clock in Unix milliseconds, which decides
// whether a record is live. Index set lifetimes are reckoned on the server's
// clock, as PEXPIREAT is. Keys the scripts build from the prefix (index sets,
// records named by an index) share the declared keys' hash slot when the
// prefix is a hash tag, which Redis Cluster requires.
const prelude = `
local P = ARGV[1]

-- extend makes set k live at least until em (Unix ms).
local function extend(k, em)
  local pttl = redis.call('PTTL', k)
  if pttl == -1 then
    redis.call('PEXPIREAT', k, em)
    return
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if now + pttl < em then
    redis.call('PEXPIREAT', k, em)
  end
end

-- unindex removes key from the index sets named by a record's ui and xi.
local function unindex(key, ui, xi)
  if ui then redis.call('SREM', P .. 'sub:' .. ui, key) end
  if xi and xi ~= '' then redis.call('SREM', P .. 'sid:' .. xi, key) end
end
`

// putRecord: KEYS = record, subject set[, sid set];
// ARGV = prefix, key, now, iss, sub, sid, ls, exp, em, data, ui, xi, app,
// keep ("1": Update keeps the stored data; Create ignores it). put stores
// data d.
const putRecord = `
local function put(d)
  local em = tonumber(ARGV[9])
  redis.call('HSET', KEYS[1], 'iss', ARGV[4], 'sub', ARGV[5], 'sid', ARGV[6],
    'ls', ARGV[7], 'exp', ARGV[8], 'em', ARGV[9], 'd', d, 'ui', ARGV[11], 'xi', ARGV[12],
    'app', ARGV[13])
  redis.call('PEXPIREAT', KEYS[1], em)
  redis.call('SADD', KEYS[2], ARGV[2])
  extend(KEYS[2], em)
  if ARGV[12] ~= '' then
    redis.call('SADD', KEYS[3], ARGV[2])
    extend(KEYS[3], em)
  end
end
`

// createScript replaces whatever is stored under the key. It returns 1
// when it stored the record, 0 when the record had already expired.
var createScript = redis.NewScript(prelude + putRecord + `
local old = redis.call('HMGET', KEYS[1], 'ui', 'xi')
unindex(ARGV[2], old[1], old[2])
redis.call('DEL', KEYS[1])
if tonumber(ARGV[9]) <= tonumber(ARGV[3]) then return 0 end
put(ARGV[10])
return 1
`)

// updateScript replaces a live record. It returns 0, storing nothing, when
// there is none.
var updateScript = redis.NewScript(prelude + putRecord + `
local old = redis.call('HMGET', KEYS[1], 'em', 'ui', 'xi', 'd')
if not old[1] or tonumber(old[1]) <= tonumber(ARGV[3]) then return 0 end
local d = ARGV[10]
if ARGV[14] == '1' then d = old[4] or '' end
unindex(ARGV[2], old[2], old[3])
redis.call('DEL', KEYS[1])
if tonumber(ARGV[9]) > tonumber(ARGV[3]) then put(d) end
return 1
`)

// deleteScript: KEYS = record; ARGV = prefix, key.
var deleteScript = redis.NewScript(prelude + `
local old = redis.call('HMGET', KEYS[1], 'ui', 'xi')
unindex(ARGV[2], old[1], old[2])
redis.call('DEL', KEYS[1])
return 1
`)

// deleteMatchingScript: KEYS = index set; ARGV = prefix, now, field ('ui'
// or 'xi'), the set's hash, app, subject, sid (each ” for any). It deletes
// every record of the set that still belongs to it and matches app,
// subject and sid, drops the set when nothing is left in it, and returns the
// keys of the live records it deleted.
var deleteMatchingScript = redis.NewScript(prelude + `
local now = tonumber(ARGV[2])
local app, sub, sid = ARGV[5], ARGV[6], ARGV[7]
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local rk = P .. 's:' .. m
  local r = redis.call('HMGET', rk, 'em', 'ui', 'xi', 'app', 'sub', 'sid')
  if not r[1] then
    redis.call('SREM', KEYS[1], m)
  else
    local idx = r[2]
    if ARGV[3] == 'xi' then idx = r[3] end
    if idx ~= ARGV[4] then
      redis.call('SREM', KEYS[1], m)
    elseif (app == '' or (r[4] or '') == app) and (sub == '' or r[5] == sub) and (sid == '' or r[6] == sid) then
      if tonumber(r[1]) > now then out[#out + 1] = m end
      unindex(m, r[2], r[3])
      redis.call('DEL', rk)
    end
  end
end
if redis.call('SCARD', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
return out
`)

// listScript: KEYS = index set; ARGV = prefix, now, field ('ui' or 'xi'),
// the set's hash. It returns {key, iss, sub, sid, ls, exp, data, app} for
// each live record and drops members whose record is gone or moved.
var listScript = redis.NewScript(prelude + `
local now = tonumber(ARGV[2])
local out = {}
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = redis.call('HMGET', P .. 's:' .. m, 'em', 'ui', 'xi', 'iss', 'sub', 'sid', 'ls', 'exp', 'd', 'app')
  local idx = r[2]
  if ARGV[3] == 'xi' then idx = r[3] end
  if not r[1] or idx ~= ARGV[4] then
    redis.call('SREM', KEYS[1], m)
  elseif tonumber(r[1]) > now then
    out[#out + 1] = {m, r[4], r[5], r[6], r[7], r[8], r[9], r[10] or ''}
  end
end
return out
`)
