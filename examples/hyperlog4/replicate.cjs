var hyperlog = require('@hyperlog/hyperlog/compat') // was: require('hyperlog')
var level = require('level')

var log = hyperlog(level(process.argv[2]))

process.stdin.pipe(log.replicate()).pipe(process.stdout)
