var hyperlog = require('@hyperlog/hyperlog/compat') // was: require('hyperlog')
var level = require('level')

var log = hyperlog(level('log.db'))

log.add(null, 'hello', function (err, node) {
  if (err) throw err
  console.log('inserted node', node.key)
  log.add([node.key], 'world', function (err, node) {
    if (err) throw err
    console.log('inserted new node', node.key, 'linking to', node.links)
  })
})
