-- wrk script for the object backend API: PUT or GET objects of SIZE bytes
-- at /DEV/0/AUTH_bench/c/<run>-t<thread>-o<n>-s<SIZE>. PUTs create new
-- objects (unique names and timestamps); GETs cycle over the first COUNT
-- names of the run named RUN (written by a PUT pass with that RUN).
-- MODE=mix alternates the two: GETs of the first COUNT objects of the run
-- named FILL, PUTs of new objects named after RUN.
-- Environment: MODE=put|get|mix, SIZE, DEV, COUNT, RUN, FILL.
local mode = os.getenv("MODE") or "get"
local size = tonumber(os.getenv("SIZE") or "4096")
local dev = os.getenv("DEV") or "sda1"
local count = tonumber(os.getenv("COUNT") or "200")
local run = os.getenv("RUN") or "r"
local fill = os.getenv("FILL") or run
local body = string.rep("x", size)
local base = os.time()
local counter = 0
local nthreads = 0

function setup(thread)
   thread:set("tid", nthreads)
   nthreads = nthreads + 1
end

function request()
   counter = counter + 1
   local n = counter
   if mode == "mix" then
      if counter % 2 == 0 then
         local path = string.format("/%s/0/AUTH_bench/c/%s-t%d-o%d-s%d", dev, fill, tid, counter % count + 2, size)
         return wrk.format("GET", path, {})
      end
      local path = string.format("/%s/0/AUTH_bench/c/%s-t%d-o%d-s%d", dev, run, tid, n, size)
      return wrk.format("PUT", path, {
         ["X-Timestamp"] = string.format("%.5f", base + counter * 0.00001),
         ["Content-Type"] = "application/octet-stream",
      }, body)
   end
   if mode ~= "put" then
      -- (names from 2: wrk may generate and drop one request per thread)
      n = counter % count + 2
   end
   local path = string.format("/%s/0/AUTH_bench/c/%s-t%d-o%d-s%d", dev, run, tid, n, size)
   if mode == "put" then
      return wrk.format("PUT", path, {
         ["X-Timestamp"] = string.format("%.5f", base + counter * 0.00001),
         ["Content-Type"] = "application/octet-stream",
      }, body)
   end
   return wrk.format("GET", path, {})
end
