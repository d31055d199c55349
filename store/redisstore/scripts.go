package redisstore

import "github.com/redis/go-redis/v9"

// The scripts share this prelude. ARGV[1] is always the key prefix; each
// script also takes the store's clock in Unix milliseconds, which decides
// whether a record is live. Index lifetimes are reckoned on the server's
// clock, as PEXPIREAT is. Keys the scripts build from the prefix (indexes,
// records named by an index) share the declared keys' hash slot when the
// prefix is a hash tag, which Redis Cluster requires.
//
// A record is a string (see encodeHead); an index is a hash whose fields are
// record keys. Earlier versions of the store wrote a record as a hash and
// an index as a set; read, members, index_add and index_rem take either, so
// those keep working until they are rewritten or expire.
const prelude = `
local P = ARGV[1]

local fields = {'em', 'ui', 'xi', 'app', 'iss', 'sub', 'sid', 'ls', 'exp'}

-- read returns the record stored under k as a table of its fields (the
-- sealed data d only when withData is set), or nil when there is none.
local function read(k, withData)
  local t = redis.call('TYPE', k).ok
  if t == 'string' then
    local v = redis.call('GET', k)
    if string.sub(v, 1, 1) ~= '2' then return nil end
    local r, pos = {}, 2
    for _, name in ipairs(fields) do
      local c = string.find(v, ':', pos, true)
      local n = tonumber(string.sub(v, pos, c - 1))
      r[name] = string.sub(v, c + 1, c + n)
      pos = c + n + 1
    end
    if withData then r.d = string.sub(v, pos) end
    return r
  elseif t == 'hash' then
    local h = redis.call('HMGET', k, 'em', 'ui', 'xi', 'app', 'iss', 'sub', 'sid', 'ls', 'exp', 'd')
    if not h[1] then return nil end
    local r = {}
    for i, name in ipairs(fields) do r[name] = h[i] or '' end
    if withData then r.d = h[10] or '' end
    return r
  end
  return nil
end

-- extend makes index k live at least until em (Unix ms).
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

local function index_add(k, m, em)
  if redis.call('TYPE', k).ok == 'set' then
    redis.call('SADD', k, m)
  else
    redis.call('HSET', k, m, '')
  end
  extend(k, em)
end

local function index_rem(k, m)
  local t = redis.call('TYPE', k).ok
  if t == 'set' then
    redis.call('SREM', k, m)
  elseif t == 'hash' then
    redis.call('HDEL', k, m)
  end
end

local function members(k)
  local t = redis.call('TYPE', k).ok
  if t == 'set' then return redis.call('SMEMBERS', k) end
  if t == 'hash' then return redis.call('HKEYS', k) end
  return {}
end

-- unindex removes key from the indexes named by a record's ui and xi.
local function unindex(key, r)
  if r.ui ~= '' then index_rem(P .. 'sub:' .. r.ui, key) end
  if r.xi ~= '' then index_rem(P .. 'sid:' .. r.xi, key) end
end
`

// putRecord: KEYS = record, subject index[, sid index];
// ARGV = prefix, key, now, em, ui, xi, head, data, keep ("1": Update keeps
// the stored data; Create ignores it). put stores head .. d.
const putRecord = `
local function put(d)
  local em = tonumber(ARGV[4])
  redis.call('SET', KEYS[1], ARGV[7] .. d, 'PXAT', ARGV[4])
  index_add(KEYS[2], ARGV[2], em)
  if ARGV[6] ~= '' then index_add(KEYS[3], ARGV[2], em) end
end
`

// createScript replaces whatever is stored under the key. It returns 1
// when it stored the record, 0 when the record had already expired.
var createScript = redis.NewScript(prelude + putRecord + `
local old = read(KEYS[1], false)
if old then unindex(ARGV[2], old) end
redis.call('DEL', KEYS[1])
if tonumber(ARGV[4]) <= tonumber(ARGV[3]) then return 0 end
put(ARGV[8])
return 1
`)

// updateScript replaces a live record. It returns 0, storing nothing, when
// there is none.
var updateScript = redis.NewScript(prelude + putRecord + `
local old = read(KEYS[1], ARGV[9] == '1')
if not old or tonumber(old.em) <= tonumber(ARGV[3]) then return 0 end
local d = ARGV[8]
if ARGV[9] == '1' then d = old.d end
unindex(ARGV[2], old)
redis.call('DEL', KEYS[1])
if tonumber(ARGV[4]) > tonumber(ARGV[3]) then put(d) end
return 1
`)

// deleteScript: KEYS = record; ARGV = prefix, key.
var deleteScript = redis.NewScript(prelude + `
local old = read(KEYS[1], false)
if old then unindex(ARGV[2], old) end
redis.call('DEL', KEYS[1])
return 1
`)

// deleteMatchingScript: KEYS = index; ARGV = prefix, now, field ('ui' or
// 'xi'), the index's hash, app, subject, sid (each ” for any). It deletes
// every record of the index that still belongs to it and matches app,
// subject and sid (Redis drops the index when nothing is left in it), and
// returns the keys of the live records it deleted.
var deleteMatchingScript = redis.NewScript(prelude + `
local now = tonumber(ARGV[2])
local app, sub, sid = ARGV[5], ARGV[6], ARGV[7]
local out = {}
for _, m in ipairs(members(KEYS[1])) do
  local rk = P .. 's:' .. m
  local r = read(rk, false)
  if not r or r[ARGV[3]] ~= ARGV[4] then
    index_rem(KEYS[1], m)
  elseif (app == '' or r.app == app) and (sub == '' or r.sub == sub) and (sid == '' or r.sid == sid) then
    if tonumber(r.em) > now then out[#out + 1] = m end
    unindex(m, r)
    redis.call('DEL', rk)
  end
end
return out
`)

// listScript: KEYS = index; ARGV = prefix, now, field ('ui' or 'xi'), the
// index's hash. It returns {key, iss, sub, sid, ls, exp, data, app} for
// each live record and drops members whose record is gone or moved.
var listScript = redis.NewScript(prelude + `
local now = tonumber(ARGV[2])
local out = {}
for _, m in ipairs(members(KEYS[1])) do
  local r = read(P .. 's:' .. m, true)
  if not r or r[ARGV[3]] ~= ARGV[4] then
    index_rem(KEYS[1], m)
  elseif tonumber(r.em) > now then
    out[#out + 1] = {m, r.iss, r.sub, r.sid, r.ls, r.exp, r.d, r.app}
  end
end
return out
`)
