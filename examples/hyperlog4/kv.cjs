var hyperlog = require('@hyperlog/hyperlog/compat') // was: require('hyperlog')
var hyperkv = require('hyperkv')
var level = require('level')
var sub = require('subleveldown')

var db = level(process.argv[2])
var kv = hyperkv({ log: hyperlog(sub(db, 'log'), { valueEncoding: 'json' }), db: sub(db, 'kv') })

kv.put(process.argv[3], process.argv[4], function (err) {
  if (err) throw err
  var stream = kv.log.replicate()
  process.stdin.pipe(stream).pipe(process.stdout)
  stream.on('end', function () {
    kv.get(process.argv[3], function (err, values) {
      if (err) throw err
      var all = Object.keys(values).map(function (k) { return values[k].value })
      console.error(process.argv[3] + ' = ' + all.sort().join(' | '))
    })
  })
})
