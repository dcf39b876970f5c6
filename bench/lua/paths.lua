-- wrk script: GET the paths listed in the file named by PATHS (one per
-- line), in turn, each thread from its own start.
local paths = {}
for line in io.lines(os.getenv("PATHS")) do
   paths[#paths + 1] = line
end
local i = 0

function request()
   i = i % #paths + 1
   return wrk.format("GET", paths[i])
end
