var hyperlog = require('@hyperlog/hyperlog/compat') // was: require('hyperlog')
var level = require('level')

var log = hyperlog(level('log.db'))

log.createReadStream().on('data', function (node) {
  console.log(node.change, node.key, node.value.toString())
})
