// Scrubbing a static_html.py page without a kernel: slider, arrow keys, clicks on tokens.
// Plain ES5, no dependency; __UID__ is replaced by the page's root element id.
(function(){var root=document.getElementById("__UID__");if(!root)return;
var d=JSON.parse(root.querySelector(".lvsal-data").textContent),n=d.tokens.length;if(!n)return;
var sl=root.querySelector(".lvsal-scrub"),out=root.querySelector(".lvsal-readout"),
cv=root.querySelector(".lvsal-heat"),cells=root.querySelectorAll(".lvsal-strip span"),cur=-1;
sl.style.display="block";
function esc(t){return String(t).replace(/[&<>]/g,function(c){return {"&":"&amp;","<":"&lt;",">":"&gt;"}[c];});}
function f3(x){return x===null?"\u2013":x.toFixed(3);}
function show(i){i=Math.max(0,Math.min(n-1,i|0));if(i===cur)return;
if(cur>=0)cells[cur].style.textDecoration="";cells[i].style.textDecoration="underline 3px";cur=i;
sl.value=i;var m=d.marks[String(i)];
out.innerHTML="step <b>"+i+"</b> / "+(n-1)+" \u00b7 <b>"+esc(d.tokens[i])+"</b> \u00b7 saliency "+f3(d.sal[i])+
(d.tau[i]===null?"":" (\u03c4 "+f3(d.tau[i])+")")+" \u00b7 p "+d.prob[i].toFixed(3)+" \u00b7 "+esc(d.decision[i])+
(m?" \u00b7 marked <b>"+m+"</b>":"");
if(cv&&d.image.length){var g=d.grid,ctx=cv.getContext("2d"),b=atob(d.image[i]),im=ctx.createImageData(g[1],g[0]);
for(var k=0;k<b.length;k++){var c=d.palette[b.charCodeAt(k)];im.data[4*k]=parseInt(c.substr(1,2),16);
im.data[4*k+1]=parseInt(c.substr(3,2),16);im.data[4*k+2]=parseInt(c.substr(5,2),16);im.data[4*k+3]=255;}
ctx.putImageData(im,0,0);}
root.setAttribute("data-step",i);}
sl.addEventListener("input",function(){show(+sl.value);});
for(var k=0;k<cells.length;k++)cells[k].addEventListener("click",function(e){show(+e.currentTarget.getAttribute("data-step"));});
root.tabIndex=0;root.addEventListener("keydown",function(e){if(e.key==="ArrowRight"){show(cur+1);e.preventDefault();}
else if(e.key==="ArrowLeft"){show(cur-1);e.preventDefault();}});
show(0);})();
