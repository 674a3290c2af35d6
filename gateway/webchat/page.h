/* The web chat page (GET /webchat/): plain JavaScript, no framework, no external resource. It opens
 * the WebSocket /webchat/ws on the same origin, keeps the session id the gateway gave it in
 * localStorage (so a reload continues the same conversation), sends what the customer types, shows the
 * staff's answers, and turns an auth prompt into a "Sign in" button that opens the URL in a new window
 * (or shows the one-time code). Text is inserted with textContent, never as HTML. */
#ifndef PARLEY_GATEWAY_WEBCHAT_PAGE_H
#define PARLEY_GATEWAY_WEBCHAT_PAGE_H
static const char webchat_page[] =
	"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Chat</title>\n"
	"<style>body{font-family:sans-serif;max-width:40em;margin:1em auto}#log{border:1px solid #ccc;"
	"height:60vh;overflow-y:auto;padding:.5em}.me{text-align:right;color:#035}.them{color:#222}"
	".sys{color:#777;font-style:italic}form{display:flex;gap:.5em;margin-top:.5em}#t{flex:1}</style>"
	"</head><body><h1>Chat</h1><div id=\"log\" aria-live=\"polite\"></div>\n"
	"<form id=\"f\"><input id=\"t\" autocomplete=\"off\" maxlength=\"4000\" aria-label=\"Message\">"
	"<button>Send</button></form>\n<script>\n"
	"(function(){'use strict';\n"
	"var log=document.getElementById('log'),f=document.getElementById('f'),t=document.getElementById('t');\n"
	"var ws=null,session=localStorage.getItem('parley-webchat-session')||'',n=0,queue=[];\n"
	"function line(cls,text){var d=document.createElement('div');d.className=cls;d.textContent=text;"
	"log.appendChild(d);log.scrollTop=log.scrollHeight;return d;}\n"
	"function send(o){if(ws&&ws.readyState===1)ws.send(JSON.stringify(o));else queue.push(o);}\n"
	"function connect(){var u=(location.protocol==='https:'?'wss://':'ws://')+location.host+"
	"location.pathname.replace(/\\/[^\\/]*$/,'/')+'ws';\n"
	" ws=new WebSocket(u);\n"
	" ws.onopen=function(){ws.send(JSON.stringify({type:'hello',session:session}));};\n"
	" ws.onmessage=function(e){var m;try{m=JSON.parse(e.data);}catch(x){return;}\n"
	"  if(m.type==='session'){session=m.session;localStorage.setItem('parley-webchat-session',session);"
	"while(queue.length)ws.send(JSON.stringify(queue.shift()));}\n"
	"  else if(m.type==='message'){line('them',m.text);}\n"
	"  else if(m.type==='auth'){var d=line('sys',(m.entity||'')+' asks you to sign in ('+m.component+') ');\n"
	"   if(m.url){var b=document.createElement('button');b.textContent='Sign in';"
	"b.onclick=function(){window.open(m.url,'_blank','noopener');};d.appendChild(b);}\n"
	"   else if(m.otp){d.appendChild(document.createTextNode('code: '+m.otp));}}\n"
	"  else if(m.type==='error'){line('sys','not sent: '+m.error);}};\n"
	" ws.onclose=function(){ws=null;setTimeout(connect,2000);};}\n"
	"f.onsubmit=function(e){e.preventDefault();var v=t.value.trim();if(!v)return;t.value='';line('me',v);"
	"send({type:'message',id:Date.now().toString(36)+'-'+(n++),text:v});};\n"
	"connect();})();\n</script></body></html>\n";
#endif
